pragma circom 2.1.0;

include "./components.circom";

template Burn() {
    signal input ValueToBurn;
    signal input SenderPrivateKey;
    signal input SenderPublicKey[2];
    signal input SenderBalance;
    signal input SenderBalanceC1[2];
    signal input SenderBalanceC2[2];
    signal input SenderVTBC1[2];
    signal input SenderVTBC2[2];
    signal input AuditorPublicKey[2];
    signal input AuditorPCT[4];
    signal input AuditorPCTAuthKey[2];
    signal input AuditorPCTNonce;
    signal input AuditorPCTRandom;

    component sender = SenderBalanceCheck();
    sender.value <== ValueToBurn;
    sender.sk <== SenderPrivateKey;
    sender.pk <== SenderPublicKey;
    sender.balance <== SenderBalance;
    sender.balanceC1 <== SenderBalanceC1;
    sender.balanceC2 <== SenderBalanceC2;

    component senderVTB = ElGamalDecryptCheck();
    senderVTB.skBits <== sender.skBits;
    senderVTB.c1 <== SenderVTBC1;
    senderVTB.c2 <== SenderVTBC2;
    senderVTB.mG <== sender.valueG;

    component auditorPk = InSubgroup();
    auditorPk.p <== AuditorPublicKey;

    component auditorPCT = PCTCheck();
    auditorPCT.amount <== ValueToBurn;
    auditorPCT.pk <== AuditorPublicKey;
    auditorPCT.pct <== AuditorPCT;
    auditorPCT.authKey <== AuditorPCTAuthKey;
    auditorPCT.nonce <== AuditorPCTNonce;
    auditorPCT.random <== AuditorPCTRandom;
}

component main {
    public [
        SenderPublicKey, SenderBalanceC1, SenderBalanceC2, SenderVTBC1, SenderVTBC2,
        AuditorPublicKey, AuditorPCT, AuditorPCTAuthKey, AuditorPCTNonce
    ]
} = Burn();
