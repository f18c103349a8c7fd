pragma circom 2.1.0;

include "circomlib/circuits/babyjub.circom";
include "circomlib/circuits/bitify.circom";
include "circomlib/circuits/comparators.circom";
include "circomlib/circuits/escalarmulany.circom";
include "circomlib/circuits/escalarmulfix.circom";
include "circomlib/circuits/poseidon.circom";

// BabyJubJub prime subgroup order l. l < 2^251, so 251 bits hold every scalar below l.
function SUBGROUP_ORDER() {
    return 2736030358979909402780800718157159386076813972158567259200215660948447373041;
}

function SCALAR_BITS() {
    return 251;
}

function BASE8() {
    return [
        5299619240641551281634865583518297030282874472190772894086521144482721001553,
        16950150798460657717958625567821834550301663161624707787222815936182638968203
    ];
}

// 8^-1 mod l
function INV8_MOD_L() {
    return 2394026564107420727433200628387514462817212225638746351800188703329891451411;
}

function babyAddVar(x1, y1, x2, y2) {
    var a = 168700;
    var d = 168696;
    var t = d * x1 * x2 * y1 * y2;
    var r[2];
    r[0] = (x1 * y2 + y1 * x2) / (1 + t);
    r[1] = (y1 * y2 - a * x1 * x2) / (1 - t);
    return r;
}

// Witness-side k·P (no constraints).
function babyMulVar(k, x, y) {
    var acc[2] = [0, 1];
    var base[2] = [x, y];
    var sum[2];
    for (var i = 0; i < SCALAR_BITS(); i++) {
        if (((k >> i) & 1) == 1) {
            sum = babyAddVar(acc[0], acc[1], base[0], base[1]);
            acc[0] = sum[0];
            acc[1] = sum[1];
        }
        sum = babyAddVar(base[0], base[1], base[0], base[1]);
        base[0] = sum[0];
        base[1] = sum[1];
    }
    return acc;
}

// in != 0, as a constraint: an inverse must exist.
template NonZero() {
    signal input in;
    signal inv;
    inv <-- in != 0 ? 1 / in : 0;
    inv * in === 1;
}

// in < l. Outputs the 251-bit decomposition of in.
template LessThanSubgroupOrder() {
    signal input in;
    signal output bits[SCALAR_BITS()];

    var n = SCALAR_BITS();
    component n2b = Num2Bits(n);
    n2b.in <== in;
    bits <== n2b.out;

    // in < 2^251 by the decomposition above, so in + 2^251 - l < 2^252 never wraps, and it
    // fits in 251 bits exactly when in < l.
    component shifted = Num2Bits(n);
    shifted.in <== in + (1 << n) - SUBGROUP_ORDER();
}

// in in [1, l): private keys and encryption randoms.
template ScalarInRange() {
    signal input in;
    signal output bits[SCALAR_BITS()];

    component nz = NonZero();
    nz.in <== in;
    component lt = LessThanSubgroupOrder();
    lt.in <== in;
    bits <== lt.bits;
}

template MulBase8() {
    signal input bits[SCALAR_BITS()];
    signal output out[2];

    component mul = EscalarMulFix(SCALAR_BITS(), BASE8());
    mul.e <== bits;
    out <== mul.out;
}

// bits·p; p must already be constrained to the prime subgroup (see InSubgroup).
template MulPoint() {
    signal input bits[SCALAR_BITS()];
    signal input p[2];
    signal output out[2];

    component mul = EscalarMulAny(SCALAR_BITS());
    mul.e <== bits;
    mul.p <== p;
    out <== mul.out;
}

template OnCurve() {
    signal input p[2];
    component check = BabyCheck();
    check.x <== p[0];
    check.y <== p[1];
}

// p is in the order-l subgroup: p = 8·q for some curve point q (the curve has order 8·l).
// EscalarMulAny's Montgomery ladder has exceptional cases (free lambda) for points with a
// small-order component, so every variable base point goes through this first.
template InSubgroup() {
    signal input p[2];

    signal q[2];
    var qv[2] = babyMulVar(INV8_MOD_L(), p[0], p[1]);
    q[0] <-- qv[0];
    q[1] <-- qv[1];

    component qOnCurve = OnCurve();
    qOnCurve.p <== q;

    component dbl[3];
    for (var i = 0; i < 3; i++) {
        dbl[i] = BabyDbl();
        if (i == 0) {
            dbl[i].x <== q[0];
            dbl[i].y <== q[1];
        } else {
            dbl[i].x <== dbl[i - 1].xout;
            dbl[i].y <== dbl[i - 1].yout;
        }
    }
    dbl[2].xout === p[0];
    dbl[2].yout === p[1];
}

template PointAdd() {
    signal input a[2];
    signal input b[2];
    signal output out[2];

    component add = BabyAdd();
    add.x1 <== a[0];
    add.y1 <== a[1];
    add.x2 <== b[0];
    add.y2 <== b[1];
    out[0] <== add.xout;
    out[1] <== add.yout;
}

// ElGamal decryption: c2 - sk·c1 == mG, written as c2 == mG + sk·c1.
// c1 is constrained to the subgroup here; c2 is pinned to a computed point.
template ElGamalDecryptCheck() {
    signal input skBits[SCALAR_BITS()];
    signal input c1[2];
    signal input c2[2];
    signal input mG[2];

    component c1Sub = InSubgroup();
    c1Sub.p <== c1;

    component shared = MulPoint();
    shared.bits <== skBits;
    shared.p <== c1;

    component sum = PointAdd();
    sum.a <== mG;
    sum.b <== shared.out;
    c2 === sum.out;
}

// ElGamal encryption: (c1, c2) == (r·Base8, mG + r·pk); pk must already be in the subgroup.
template ElGamalEncryptCheck() {
    signal input rBits[SCALAR_BITS()];
    signal input pk[2];
    signal input mG[2];
    signal input c1[2];
    signal input c2[2];

    component rG = MulBase8();
    rG.bits <== rBits;
    c1 === rG.out;

    component rPk = MulPoint();
    rPk.bits <== rBits;
    rPk.p <== pk;

    component sum = PointAdd();
    sum.a <== mG;
    sum.b <== rPk.out;
    c2 === sum.out;
}

// Poseidon-cipher encryption of the one-element message [amount] (state width 4):
// key K = random·pk, authKey = random·Base8, nonce < 2^128. pk must already be in the subgroup.
template PCTCheck() {
    signal input amount;
    signal input pk[2];
    signal input pct[4];
    signal input authKey[2];
    signal input nonce;
    signal input random;

    component r = ScalarInRange();
    r.in <== random;

    component rG = MulBase8();
    rG.bits <== r.bits;
    authKey === rG.out;

    component key = MulPoint();
    key.bits <== r.bits;
    key.p <== pk;

    component nonceRange = Num2Bits(128);
    nonceRange.in <== nonce;

    // state0 = [0, K.x, K.y, nonce + length·2^128] with length = 1
    component first = PoseidonEx(3, 4);
    first.initialState <== 0;
    first.inputs[0] <== key.out[0];
    first.inputs[1] <== key.out[1];
    first.inputs[2] <== nonce + (1 << 128);

    // The message [amount] is padded to [amount, 0, 0] and absorbed into state[1..3].
    pct[0] === first.out[1] + amount;
    pct[1] === first.out[2];
    pct[2] === first.out[3];

    component tag = PoseidonEx(3, 4);
    tag.initialState <== first.out[0];
    tag.inputs[0] <== pct[0];
    tag.inputs[1] <== pct[1];
    tag.inputs[2] <== pct[2];
    pct[3] === tag.out[1];
}

// Everything a spend proves about the sender: PK = sk·Base8 with sk in [1, l),
// value < l, balance < l, value <= balance, and the balance EGCT decrypts to balance·Base8.
template SenderBalanceCheck() {
    signal input value;
    signal input sk;
    signal input pk[2];
    signal input balance;
    signal input balanceC1[2];
    signal input balanceC2[2];
    signal output skBits[SCALAR_BITS()];
    signal output valueG[2];

    component skRange = ScalarInRange();
    skRange.in <== sk;
    skBits <== skRange.bits;

    component pkCheck = MulBase8();
    pkCheck.bits <== skBits;
    pk === pkCheck.out;

    component valueRange = LessThanSubgroupOrder();
    valueRange.in <== value;
    component balanceRange = LessThanSubgroupOrder();
    balanceRange.in <== balance;

    // Both operands are below l < 2^251, so the 252-bit comparison cannot wrap.
    component enough = LessEqThan(252);
    enough.in[0] <== value;
    enough.in[1] <== balance;
    enough.out === 1;

    component vG = MulBase8();
    vG.bits <== valueRange.bits;
    valueG <== vG.out;

    component bG = MulBase8();
    bG.bits <== balanceRange.bits;

    component decrypt = ElGamalDecryptCheck();
    decrypt.skBits <== skBits;
    decrypt.c1 <== balanceC1;
    decrypt.c2 <== balanceC2;
    decrypt.mG <== bG.out;
}
