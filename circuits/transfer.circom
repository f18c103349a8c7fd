pragma circom 2.1.0;

include "./components.circom";

template Transfer() {
    signal input ValueToTransfer;
    signal input SenderPrivateKey;
    signal input SenderPublicKey[2];
    signal input SenderBalance;
    signal input SenderBalanceC1[2];
    signal input SenderBalanceC2[2];
    signal input SenderVTTC1[2];
    signal input SenderVTTC2[2];
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

    component sender = SenderBalanceCheck();
    sender.value <== ValueToTransfer;
    sender.sk <== SenderPrivateKey;
    sender.pk <== SenderPublicKey;
    sender.balance <== SenderBalance;
    sender.balanceC1 <== SenderBalanceC1;
    sender.balanceC2 <== SenderBalanceC2;

    component senderVTT = ElGamalDecryptCheck();
    senderVTT.skBits <== sender.skBits;
    senderVTT.c1 <== SenderVTTC1;
    senderVTT.c2 <== SenderVTTC2;
    senderVTT.mG <== sender.valueG;

    component receiverPk = InSubgroup();
    receiverPk.p <== ReceiverPublicKey;

    component receiverRandom = ScalarInRange();
    receiverRandom.in <== ReceiverVTTRandom;

    component receiverVTT = ElGamalEncryptCheck();
    receiverVTT.rBits <== receiverRandom.bits;
    receiverVTT.pk <== ReceiverPublicKey;
    receiverVTT.mG <== sender.valueG;
    receiverVTT.c1 <== ReceiverVTTC1;
    receiverVTT.c2 <== ReceiverVTTC2;

    component receiverPCT = PCTCheck();
    receiverPCT.amount <== ValueToTransfer;
    receiverPCT.pk <== ReceiverPublicKey;
    receiverPCT.pct <== ReceiverPCT;
    receiverPCT.authKey <== ReceiverPCTAuthKey;
    receiverPCT.nonce <== ReceiverPCTNonce;
    receiverPCT.random <== ReceiverPCTRandom;

    component auditorPk = InSubgroup();
    auditorPk.p <== AuditorPublicKey;

    component auditorPCT = PCTCheck();
    auditorPCT.amount <== ValueToTransfer;
    auditorPCT.pk <== AuditorPublicKey;
    auditorPCT.pct <== AuditorPCT;
    auditorPCT.authKey <== AuditorPCTAuthKey;
    auditorPCT.nonce <== AuditorPCTNonce;
    auditorPCT.random <== AuditorPCTRandom;
}

component main {
    public [
        SenderPublicKey, SenderBalanceC1, SenderBalanceC2, SenderVTTC1, SenderVTTC2,
        ReceiverPublicKey, ReceiverVTTC1, ReceiverVTTC2,
        ReceiverPCT, ReceiverPCTAuthKey, ReceiverPCTNonce,
        AuditorPublicKey, AuditorPCT, AuditorPCTAuthKey, AuditorPCTNonce
    ]
} = Transfer();
