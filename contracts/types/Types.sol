// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

/// @notice Affine point on BabyJubJub.
struct Point {
    uint256 x;
    uint256 y;
}

/// @notice Exponential ElGamal ciphertext: (C1, C2) = (r·Base8, m·Base8 + r·PK).
struct EGCT {
    Point c1;
    Point c2;
}

/// @notice Groth16 proof points as formatted for snarkjs' Solidity verifier calldata.
struct ProofPoints {
    uint256[2] a;
    uint256[2][2] b;
    uint256[2] c;
}

struct RegisterProof {
    ProofPoints proofPoints;
    uint256[5] publicSignals;
}

struct MintProof {
    ProofPoints proofPoints;
    uint256[24] publicSignals;
}

struct TransferProof {
    ProofPoints proofPoints;
    uint256[32] publicSignals;
}

struct WithdrawProof {
    ProofPoints proofPoints;
    uint256[16] publicSignals;
}

struct BurnProof {
    ProofPoints proofPoints;
    uint256[19] publicSignals;
}

/// @notice Poseidon ciphertext `[c0, c1, c2, c3, authKey.x, authKey.y, nonce]` of one credit,
/// tagged with the balance's transaction index at which it was credited.
struct AmountPCT {
    uint256[7] pct;
    uint256 index;
}

struct Metadata {
    address messageFrom;
    address messageTo;
    string messageType;
    bytes encryptedMsg;
}

struct CreateEncryptedERCParams {
    address registrar;
    bool isConverter;
    string name;
    string symbol;
    uint8 decimals;
    address mintVerifier;
    address withdrawVerifier;
    address transferVerifier;
    address burnVerifier;
}
