// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestUSDC
/// @notice 6-decimal stand-in for USDC on local and test networks.
/// @dev `mint` is an open faucet: anyone can mint any amount. Never deploy where it could be
/// mistaken for real USDC.
contract TestUSDC is ERC20 {
    constructor() ERC20("Test USDC", "USDC") {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Open faucet for local use.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
