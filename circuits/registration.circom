pragma circom 2.1.0;

include "./components.circom";

template Registration() {
    signal input SenderPrivateKey;
    signal input SenderPublicKey[2];
    signal input SenderAddress;
    signal input ChainID;
    signal input RegistrationHash;

    component sk = ScalarInRange();
    sk.in <== SenderPrivateKey;

    component pk = MulBase8();
    pk.bits <== sk.bits;
    SenderPublicKey === pk.out;

    component hash = Poseidon(3);
    hash.inputs[0] <== ChainID;
    hash.inputs[1] <== SenderPrivateKey;
    hash.inputs[2] <== SenderAddress;
    RegistrationHash === hash.out;
}

component main {public [SenderPublicKey, SenderAddress, ChainID, RegistrationHash]} = Registration();
