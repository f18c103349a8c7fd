// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

/// @notice TEST ONLY. Rejects every proof for every circuit, so tests can exercise the
/// invalid-proof paths. Never deploy outside tests.
contract RejectAllVerifier {
    function verifyProof(uint256[2] calldata, uint256[2][2] calldata, uint256[2] calldata, uint256[5] calldata)
        external
        pure
        returns (bool)
    {
        return false;
    }

    function verifyProof(uint256[2] calldata, uint256[2][2] calldata, uint256[2] calldata, uint256[16] calldata)
        external
        pure
        returns (bool)
    {
        return false;
    }

    function verifyProof(uint256[2] calldata, uint256[2][2] calldata, uint256[2] calldata, uint256[19] calldata)
        external
        pure
        returns (bool)
    {
        return false;
    }

    function verifyProof(uint256[2] calldata, uint256[2][2] calldata, uint256[2] calldata, uint256[24] calldata)
        external
        pure
        returns (bool)
    {
        return false;
    }

    function verifyProof(uint256[2] calldata, uint256[2][2] calldata, uint256[2] calldata, uint256[32] calldata)
        external
        pure
        returns (bool)
    {
        return false;
    }
}
