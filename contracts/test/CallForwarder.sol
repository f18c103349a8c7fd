// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

/// @notice TEST ONLY. Relays calls so that msg.sender is this contract, as a smart-contract wallet
/// would: the relayed eERC call is not the transaction's own calldata.
contract CallForwarder {
    function forward(address target, bytes calldata data) external returns (bytes memory ret) {
        bool ok;
        (ok, ret) = target.call(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
    }
}
