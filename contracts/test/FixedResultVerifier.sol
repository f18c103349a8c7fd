// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

/// @notice TEST ONLY. Answers every proof for every circuit with the same fixed result: `true`
/// lets tests reach the code after proof verification without real proofs, `false` exercises the
/// invalid-proof paths. Never deploy outside tests.
contract FixedResultVerifier {
    bool public immutable result;

    constructor(bool result_) {
        result = result_;
    }

    function verifyProof(uint256[2] calldata, uint256[2][2] calldata, uint256[2] calldata, uint256[5] calldata) external view returns (bool) {
        return result;
    }

    function verifyProof(uint256[2] calldata, uint256[2][2] calldata, uint256[2] calldata, uint256[16] calldata) external view returns (bool) {
        return result;
    }

    function verifyProof(uint256[2] calldata, uint256[2][2] calldata, uint256[2] calldata, uint256[19] calldata) external view returns (bool) {
        return result;
    }

    function verifyProof(uint256[2] calldata, uint256[2][2] calldata, uint256[2] calldata, uint256[24] calldata) external view returns (bool) {
        return result;
    }

    function verifyProof(uint256[2] calldata, uint256[2][2] calldata, uint256[2] calldata, uint256[32] calldata) external view returns (bool) {
        return result;
    }
}
