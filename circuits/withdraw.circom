pragma circom 2.1.0;

include "./components.circom";

template Withdraw() {
    signal input ValueToWithdraw;
    signal input SenderPrivateKey;
    signal input SenderPublicKey[2];
    signal input SenderBalance;
    signal input SenderBalanceC1[2];
    signal input SenderBalanceC2[2];
    signal input AuditorPublicKey[2];
    signal input AuditorPCT[4];
    signal input AuditorPCTAuthKey[2];
    signal input AuditorPCTNonce;
    signal input AuditorPCTRandom;

    component sender = SenderBalanceCheck();
    sender.value <== ValueToWithdraw;
    sender.sk <== SenderPrivateKey;
    sender.pk <== SenderPublicKey;
    sender.balance <== SenderBalance;
    sender.balanceC1 <== SenderBalanceC1;
    sender.balanceC2 <== SenderBalanceC2;

    component auditorPk = InSubgroup();
    auditorPk.p <== AuditorPublicKey;

    component auditorPCT = PCTCheck();
    auditorPCT.amount <== ValueToWithdraw;
    auditorPCT.pk <== AuditorPublicKey;
    auditorPCT.pct <== AuditorPCT;
    auditorPCT.authKey <== AuditorPCTAuthKey;
    auditorPCT.nonce <== AuditorPCTNonce;
    auditorPCT.random <== AuditorPCTRandom;
}

component main {
    public [
        ValueToWithdraw, SenderPublicKey, SenderBalanceC1, SenderBalanceC2,
        AuditorPublicKey, AuditorPCT, AuditorPCTAuthKey, AuditorPCTNonce
    ]
} = Withdraw();
