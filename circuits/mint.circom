pragma circom 2.1.0;

include "./components.circom";

template Mint() {
    signal input ValueToMint;
    signal input ChainID;
    signal input NullifierHash;
    signal input ReceiverPublicKey[2];
    signal input ReceiverVTTC1[2];
    signal input ReceiverVTTC2[2];
    signal input ReceiverVTTRandom;
    signal input ReceiverPCT[4];
    signal input ReceiverPCTAuthKey[2];
    signal input ReceiverPCTNonce;
    signal input ReceiverPCTRandom;
    signal input AuditorPublicKey[2];
    signal input AuditorPCT[4];
    signal input AuditorPCTAuthKey[2];
    signal input AuditorPCTNonce;
    signal input AuditorPCTRandom;

    component value = LessThanSubgroupOrder();
    value.in <== ValueToMint;

    component valueG = MulBase8();
    valueG.bits <== value.bits;

    component receiverPk = InSubgroup();
    receiverPk.p <== ReceiverPublicKey;

    component receiverRandom = ScalarInRange();
    receiverRandom.in <== ReceiverVTTRandom;

    component receiverVTT = ElGamalEncryptCheck();
    receiverVTT.rBits <== receiverRandom.bits;
    receiverVTT.pk <== ReceiverPublicKey;
    receiverVTT.mG <== valueG.out;
    receiverVTT.c1 <== ReceiverVTTC1;
    receiverVTT.c2 <== ReceiverVTTC2;

    component receiverPCT = PCTCheck();
    receiverPCT.amount <== ValueToMint;
    receiverPCT.pk <== ReceiverPublicKey;
    receiverPCT.pct <== ReceiverPCT;
    receiverPCT.authKey <== ReceiverPCTAuthKey;
    receiverPCT.nonce <== ReceiverPCTNonce;
    receiverPCT.random <== ReceiverPCTRandom;

    component auditorPk = InSubgroup();
    auditorPk.p <== AuditorPublicKey;

    component auditorPCT = PCTCheck();
    auditorPCT.amount <== ValueToMint;
    auditorPCT.pk <== AuditorPublicKey;
    auditorPCT.pct <== AuditorPCT;
    auditorPCT.authKey <== AuditorPCTAuthKey;
    auditorPCT.nonce <== AuditorPCTNonce;
    auditorPCT.random <== AuditorPCTRandom;

    component nullifier = Poseidon(5);
    nullifier.inputs[0] <== ChainID;
    for (var i = 0; i < 4; i++) {
        nullifier.inputs[i + 1] <== AuditorPCT[i];
    }
    NullifierHash === nullifier.out;
}

component main {
    public [
        ChainID, NullifierHash,
        ReceiverPublicKey, ReceiverVTTC1, ReceiverVTTC2,
        ReceiverPCT, ReceiverPCTAuthKey, ReceiverPCTNonce,
        AuditorPublicKey, AuditorPCT, AuditorPCTAuthKey, AuditorPCTNonce
    ]
} = Mint();
