// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {Point, RegisterProof} from "./types/Types.sol";
import {IRegistrationVerifier} from "./interfaces/IRegistrationVerifier.sol";
import {BabyJubJub} from "./libraries/BabyJubJub.sol";

/// @title Registrar
/// @notice Binds an address to its BabyJubJub public key, proven with the registration circuit.
/// @dev Public signals: [0,1] SenderPublicKey, [2] SenderAddress, [3] ChainID, [4] RegistrationHash.
/// Keys are immutable once registered: balances are encrypted to the key, so replacing it would
/// strand them. The official key derivation is deterministic per wallet, so there is nothing to
/// rotate to; the same key would also repeat its registration hash, which is single-use.
contract Registrar {
    IRegistrationVerifier public immutable registrationVerifier;

    mapping(address userAddress => Point userPublicKey) public userPublicKeys;
    mapping(uint256 registrationHash => bool isRegistered) public isRegistered;

    event Register(address indexed user, Point publicKey);

    error ZeroAddress();
    error InvalidSender();
    error InvalidChainId();
    error InvalidRegistrationHash();
    error RegistrationHashAlreadyUsed();
    error UserAlreadyRegistered(address user);
    error InvalidPublicKey();
    error InvalidProof();

    constructor(address registrationVerifier_) {
        if (registrationVerifier_ == address(0)) revert ZeroAddress();
        registrationVerifier = IRegistrationVerifier(registrationVerifier_);
    }

    /// @notice Registers msg.sender's public key.
    function register(RegisterProof calldata proof) external {
        uint256[5] calldata s = proof.publicSignals;
        if (s[2] != uint256(uint160(msg.sender))) revert InvalidSender();
        if (s[3] != block.chainid) revert InvalidChainId();
        if (s[4] >= BabyJubJub.P) revert InvalidRegistrationHash();
        if (isRegistered[s[4]]) revert RegistrationHashAlreadyUsed();
        if (isUserRegistered(msg.sender)) revert UserAlreadyRegistered(msg.sender);

        Point memory key = Point(s[0], s[1]);
        // x = 0 is the identity or the order-2 point: never sk·Base8 for sk in [1, l).
        if (key.x == 0 || !BabyJubJub.isOnCurve(key)) revert InvalidPublicKey();

        if (
            !registrationVerifier.verifyProof(
                proof.proofPoints.a, proof.proofPoints.b, proof.proofPoints.c, s
            )
        ) revert InvalidProof();

        isRegistered[s[4]] = true;
        userPublicKeys[msg.sender] = key;
        emit Register(msg.sender, key);
    }

    function isUserRegistered(address user) public view returns (bool) {
        return userPublicKeys[user].x != 0;
    }

    /// @return The user's key as [x, y], or [0, 0] if unregistered.
    function getUserPublicKey(address user) external view returns (uint256[2] memory) {
        Point storage key = userPublicKeys[user];
        return [key.x, key.y];
    }
}
