import type { Hex } from "viem";
import { mulBase, type Point } from "./curve.js";
import { type EGCT, encryptElGamal } from "./elgamal.js";
import { encryptPCT, type PCT } from "./pct.js";
import { poseidonHash } from "./poseidon.js";

/** snarkjs input: every signal as a decimal string. */
export type CircuitInputs = Record<string, string | string[]>;

const dec = (v: bigint): string => v.toString(10);
const decs = (v: readonly bigint[]): string[] => v.map(dec);

/** The four signal groups a PCT occupies in a circuit, named `<prefix>PCT…`. */
function pctSignals(prefix: string, enc: ReturnType<typeof encryptPCT>): CircuitInputs {
  return {
    [`${prefix}PCT`]: decs(enc.ciphertext),
    [`${prefix}PCTAuthKey`]: decs(enc.authKey),
    [`${prefix}PCTNonce`]: dec(enc.nonce),
    [`${prefix}PCTRandom`]: dec(enc.random),
  };
}

/** The sender's side of a spend: key, balance and the balance EGCT it is proved against. */
/** The receiver's key, its VTT (with the randomness the circuit checks) and its PCT. */
function receiverSignals(pk: Point, vtt: ReturnType<typeof encryptElGamal>, pct: ReturnType<typeof encryptPCT>): CircuitInputs {
  return {
    ReceiverPublicKey: decs(pk),
    ReceiverVTTC1: decs(vtt.ct.c1),
    ReceiverVTTC2: decs(vtt.ct.c2),
    ReceiverVTTRandom: dec(vtt.random),
    ...pctSignals("Receiver", pct),
  };
}

const auditorSignals = (pk: Point, pct: ReturnType<typeof encryptPCT>): CircuitInputs => ({
  AuditorPublicKey: decs(pk),
  ...pctSignals("Auditor", pct),
});

function senderSignals(sk: bigint, balance: bigint, balanceCT: EGCT): CircuitInputs {
  return {
    SenderPrivateKey: dec(sk),
    SenderPublicKey: decs(mulBase(sk)),
    SenderBalance: dec(balance),
    SenderBalanceC1: decs(balanceCT.c1),
    SenderBalanceC2: decs(balanceCT.c2),
  };
}

export function registrationInputs(args: { sk: bigint; address: Hex; chainId: bigint }): {
  input: CircuitInputs;
  publicKey: Point;
  registrationHash: bigint;
} {
  const publicKey = mulBase(args.sk);
  const address = BigInt(args.address);
  const registrationHash = poseidonHash([args.chainId, args.sk, address]);
  return {
    input: {
      SenderPrivateKey: dec(args.sk),
      SenderPublicKey: decs(publicKey),
      SenderAddress: dec(address),
      ChainID: dec(args.chainId),
      RegistrationHash: dec(registrationHash),
    },
    publicKey,
    registrationHash,
  };
}

/**
 * Choices a sender may make in a transfer instead of fresh randomness: the nonce of both PCTs,
 * the sender VTT's randomness, and the receiver PCT's randomness as a function of the sender VTT
 * (a payer that derives it from its own key can read its receiver PCTs back).
 */
export type TransferPCTOptions = { nonce?: bigint; senderVTTRandom?: bigint; receiverPCTRandom?: (senderVTT: EGCT) => bigint };

export function transferInputs(args: {
  sk: bigint;
  value: bigint;
  balance: bigint;
  balanceCT: EGCT;
  receiverPk: Point;
  auditorPk: Point;
  pct?: TransferPCTOptions;
}): { input: CircuitInputs; senderVTT: EGCT; receiverVTT: EGCT; receiverPCT: PCT; auditorPCT: PCT } {
  const o = args.pct ?? {};
  const senderVTT = encryptElGamal(args.value, mulBase(args.sk), o.senderVTTRandom);
  const receiverVTT = encryptElGamal(args.value, args.receiverPk);
  const receiverPCT = encryptPCT(args.value, args.receiverPk, { nonce: o.nonce, random: o.receiverPCTRandom?.(senderVTT.ct) });
  const auditorPCT = encryptPCT(args.value, args.auditorPk, { nonce: o.nonce });
  const sender = senderSignals(args.sk, args.balance, args.balanceCT);
  return {
    input: {
      ValueToTransfer: dec(args.value),
      SenderPrivateKey: sender.SenderPrivateKey,
      SenderPublicKey: sender.SenderPublicKey,
      SenderBalance: sender.SenderBalance,
      SenderBalanceC1: sender.SenderBalanceC1,
      SenderBalanceC2: sender.SenderBalanceC2,
      SenderVTTC1: decs(senderVTT.ct.c1),
      SenderVTTC2: decs(senderVTT.ct.c2),
      ...receiverSignals(args.receiverPk, receiverVTT, receiverPCT),
      ...auditorSignals(args.auditorPk, auditorPCT),
    },
    senderVTT: senderVTT.ct,
    receiverVTT: receiverVTT.ct,
    receiverPCT: receiverPCT.pct,
    auditorPCT: auditorPCT.pct,
  };
}

export function withdrawInputs(args: { sk: bigint; value: bigint; balance: bigint; balanceCT: EGCT; auditorPk: Point }): {
  input: CircuitInputs;
  auditorPCT: PCT;
} {
  const auditorPCT = encryptPCT(args.value, args.auditorPk);
  return {
    input: {
      ValueToWithdraw: dec(args.value),
      ...senderSignals(args.sk, args.balance, args.balanceCT),
      ...auditorSignals(args.auditorPk, auditorPCT),
    },
    auditorPCT: auditorPCT.pct,
  };
}

export function mintInputs(args: { value: bigint; chainId: bigint; receiverPk: Point; auditorPk: Point }): {
  input: CircuitInputs;
  nullifierHash: bigint;
  receiverVTT: EGCT;
  receiverPCT: PCT;
  auditorPCT: PCT;
} {
  const receiverVTT = encryptElGamal(args.value, args.receiverPk);
  const receiverPCT = encryptPCT(args.value, args.receiverPk);
  const auditorPCT = encryptPCT(args.value, args.auditorPk);
  const nullifierHash = poseidonHash([args.chainId, ...auditorPCT.ciphertext]);
  return {
    input: {
      ValueToMint: dec(args.value),
      ChainID: dec(args.chainId),
      NullifierHash: dec(nullifierHash),
      ...receiverSignals(args.receiverPk, receiverVTT, receiverPCT),
      ...auditorSignals(args.auditorPk, auditorPCT),
    },
    nullifierHash,
    receiverVTT: receiverVTT.ct,
    receiverPCT: receiverPCT.pct,
    auditorPCT: auditorPCT.pct,
  };
}

export function burnInputs(args: { sk: bigint; value: bigint; balance: bigint; balanceCT: EGCT; auditorPk: Point }): {
  input: CircuitInputs;
  senderVTB: EGCT;
  auditorPCT: PCT;
} {
  const senderVTB = encryptElGamal(args.value, mulBase(args.sk));
  const auditorPCT = encryptPCT(args.value, args.auditorPk);
  return {
    input: {
      ValueToBurn: dec(args.value),
      ...senderSignals(args.sk, args.balance, args.balanceCT),
      SenderVTBC1: decs(senderVTB.ct.c1),
      SenderVTBC2: decs(senderVTB.ct.c2),
      ...auditorSignals(args.auditorPk, auditorPCT),
    },
    senderVTB: senderVTB.ct,
    auditorPCT: auditorPCT.pct,
  };
}
