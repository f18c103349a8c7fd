/**
 * Contract tests against a real anvil. Proof verification is stubbed with the test-only
 * FixedResultVerifier (accepting or rejecting every proof): these tests cover everything the contracts decide on
 * their own (access, registration, key and snapshot checks, balance bookkeeping, events, curve
 * arithmetic); proofs end to end are covered by the eERC end-to-end tests.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { babyjubjub } from "@noble/curves/misc.js";
import {
  type Abi,
  type Address,
  type BaseError,
  createPublicClient,
  createWalletClient,
  decodeErrorResult,
  encodeDeployData,
  getAddress,
  type Hex,
  http,
  type PublicClient,
  parseEventLogs,
  type TransactionReceipt,
} from "viem";
import { foundry } from "viem/chains";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EncryptedERCAbi } from "../abis/EncryptedERCAbi.js";
import { RegistrarAbi } from "../abis/RegistrarAbi.js";
import { TestUSDCAbi } from "../abis/TestUSDCAbi.js";
import { type Artifact, buildContracts, loadArtifact } from "../src/build/contracts.js";
import { type Anvil, startAnvil } from "../src/chain/anvil.js";
import { NO_PROOF, revertChecker } from "./contract-helpers.js";

const P = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;
const L = 2736030358979909402780800718157159386076813972158567259200215660948447373041n;
const CHAIN_ID = 31337n;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

type Pt = ReturnType<typeof babyjubjub.Point.fromAffine>;
type XY = { x: bigint; y: bigint };
type Ct = { c1: Pt; c2: Pt };
type Words7 = readonly [bigint, bigint, bigint, bigint, bigint, bigint, bigint];

const B8 = babyjubjub.Point.BASE;
const ZERO = babyjubjub.Point.ZERO;
const mul = (p: Pt, k: bigint): Pt => p.multiplyUnsafe(((k % L) + L) % L);
const xy = (p: Pt): XY => ({ x: p.x, y: p.y });
const fromXY = (p: XY): Pt => babyjubjub.Point.fromAffine({ x: p.x, y: p.y });
const ctWords = (c: Ct): bigint[] => [c.c1.x, c.c1.y, c.c2.x, c.c2.y];
const ctFrom = (e: { c1: XY; c2: XY }): Ct => ({ c1: fromXY(e.c1), c2: fromXY(e.c2) });
const ctEqual = (a: Ct, b: Ct): boolean => a.c1.equals(b.c1) && a.c2.equals(b.c2);
const enc = (m: bigint, r: bigint, pk: Pt): Ct => ({ c1: mul(B8, r), c2: mul(B8, m).add(mul(pk, r)) });
const pkWords = (p: Pt): bigint[] => [p.x, p.y];
/** Stand-in PCT words: the contracts store and emit them without interpreting them. */
const pct = (tag: bigint): Words7 => [tag, tag + 1n, tag + 2n, tag + 3n, B8.x, B8.y, tag + 6n];
/** The generated Groth16 verifiers and their public-signal counts. */
const VERIFIERS: Record<string, number> = {
  RegistrationVerifier: 5,
  TransferVerifier: 32,
  WithdrawVerifier: 16,
  MintVerifier: 24,
  BurnVerifier: 19,
};

let anvil: Anvil;
let pub: PublicClient;
let owner: Address, alice: Address, bob: Address, carol: Address, auditor: Address, dave: Address;
const keys = new Map<Address, bigint>();
const pkOf = (a: Address): Pt => B8.multiply(keys.get(a)!);
let artifacts: Record<string, Artifact>;

async function deploy(name: string, args: unknown[] = []): Promise<Address> {
  const { abi, bytecode } = artifacts[name];
  const wallet = createWalletClient({ account: owner, chain: foundry, transport: http(anvil.rpcUrl) });
  const hash = await wallet.deployContract({ abi: abi as Abi, bytecode, args } as never);
  const receipt = await pub.waitForTransactionReceipt({ hash });
  if (!receipt.contractAddress) throw new Error(`deploying ${name} failed`);
  return getAddress(receipt.contractAddress);
}

async function send(
  from: Address,
  address: Address,
  abi: Abi | readonly unknown[],
  functionName: string,
  args: readonly unknown[],
): Promise<TransactionReceipt> {
  const wallet = createWalletClient({ account: from, chain: foundry, transport: http(anvil.rpcUrl) });
  const hash = await wallet.writeContract({ address, abi, functionName, args } as never);
  const receipt = await pub.waitForTransactionReceipt({ hash });
  expect(receipt.status).toBe("success");
  return receipt;
}

async function read<T>(address: Address, abi: Abi | readonly unknown[], functionName: string, args: readonly unknown[] = []): Promise<T> {
  return (await pub.readContract({ address, abi, functionName, args } as never)) as T;
}

const expectRevert = revertChecker(() => pub);

function events(receipt: TransactionReceipt, eventName: string): { args: Record<string, unknown> }[] {
  return parseEventLogs({ abi: [...EncryptedERCAbi, ...RegistrarAbi] as Abi, logs: receipt.logs, eventName }) as never;
}

let hashCounter = 1000n;
const registerSignals = (user: Address, pk: Pt, overrides: Partial<Record<number, bigint>> = {}): bigint[] => {
  const s = [pk.x, pk.y, BigInt(user), CHAIN_ID, hashCounter++];
  for (const [i, v] of Object.entries(overrides)) s[Number(i)] = v!;
  return s;
};

describe("contracts", () => {
  let acceptAll: Address, rejectAll: Address, registrar: Address, rejectingRegistrar: Address;
  let converter: Address, standalone: Address, rejecting: Address;
  let usdc: Address, token18: Address, token2: Address;

  const eercParams = (isConverter: boolean, verifier: Address, decimals = 6) => ({
    registrar,
    isConverter,
    name: isConverter ? "Encrypted USDC" : "Encrypted Token",
    symbol: isConverter ? "eUSDC" : "eTKN",
    decimals,
    mintVerifier: verifier,
    withdrawVerifier: verifier,
    transferVerifier: verifier,
    burnVerifier: verifier,
  });

  async function register(user: Address, sk: bigint, on = registrar): Promise<TransactionReceipt> {
    keys.set(user, sk);
    return send(user, on, RegistrarAbi, "register", [{ proofPoints: NO_PROOF, publicSignals: registerSignals(user, B8.multiply(sk)) }]);
  }

  async function balance(contract: Address, user: Address, tokenId: bigint) {
    const [eGCT, nonce, amountPCTs, balancePCT, transactionIndex] = await read<
      [{ c1: XY; c2: XY }, bigint, { pct: readonly bigint[]; index: bigint }[], readonly bigint[], bigint]
    >(contract, EncryptedERCAbi, "balanceOf", [user, tokenId]);
    const zero = eGCT.c1.x === 0n && eGCT.c1.y === 0n && eGCT.c2.x === 0n && eGCT.c2.y === 0n;
    return { raw: eGCT, ct: zero ? { c1: ZERO, c2: ZERO } : ctFrom(eGCT), nonce, amountPCTs, balancePCT, transactionIndex };
  }

  function transferProof(o: {
    sender: Address;
    receiver: Address;
    current: Ct;
    senderVTT: Ct;
    receiverVTT: Ct;
    receiverPCT?: Words7;
    auditorPCT?: Words7;
    overrides?: Partial<Record<number, bigint>>;
  }) {
    const s = [
      ...pkWords(pkOf(o.sender)),
      ...ctWords(o.current),
      ...ctWords(o.senderVTT),
      ...pkWords(pkOf(o.receiver)),
      ...ctWords(o.receiverVTT),
      ...(o.receiverPCT ?? pct(100n)),
      ...pkWords(pkOf(auditor)),
      ...(o.auditorPCT ?? pct(200n)),
    ];
    for (const [i, v] of Object.entries(o.overrides ?? {})) s[Number(i)] = v!;
    expect(s).toHaveLength(32);
    return { proofPoints: NO_PROOF, publicSignals: s };
  }

  function withdrawProof(user: Address, value: bigint, current: Ct, overrides: Partial<Record<number, bigint>> = {}) {
    const s = [value, ...pkWords(pkOf(user)), ...ctWords(current), ...pkWords(pkOf(auditor)), ...pct(300n)];
    for (const [i, v] of Object.entries(overrides)) s[Number(i)] = v!;
    expect(s).toHaveLength(16);
    return { proofPoints: NO_PROOF, publicSignals: s };
  }

  function mintProof(user: Address, vtt: Ct, nullifier: bigint, overrides: Partial<Record<number, bigint>> = {}) {
    const s = [CHAIN_ID, nullifier, ...pkWords(pkOf(user)), ...ctWords(vtt), ...pct(400n), ...pkWords(pkOf(auditor)), ...pct(500n)];
    for (const [i, v] of Object.entries(overrides)) s[Number(i)] = v!;
    expect(s).toHaveLength(24);
    return { proofPoints: NO_PROOF, publicSignals: s };
  }

  function burnProof(user: Address, current: Ct, vtb: Ct) {
    const s = [...pkWords(pkOf(user)), ...ctWords(current), ...ctWords(vtb), ...pkWords(pkOf(auditor)), ...pct(600n)];
    expect(s).toHaveLength(19);
    return { proofPoints: NO_PROOF, publicSignals: s };
  }

  beforeAll(async () => {
    await buildContracts();
    const names = ["FixedResultVerifier", "Registrar", "EncryptedERC", "TestUSDC", "TestToken", "NoDecimalsToken", "BabyJubJubHarness"];
    for (const v of Object.keys(VERIFIERS)) if (existsSync(path.join(ROOT, "build", "contracts", `${v}.json`))) names.push(v);
    artifacts = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await loadArtifact(n)] as const)));

    anvil = await startAnvil();
    pub = createPublicClient({ chain: foundry, transport: http(anvil.rpcUrl) });
    const accounts = (await pub.request({ method: "eth_accounts" } as never)) as Address[];
    [owner, alice, bob, carol, auditor, dave] = accounts.map((a) => getAddress(a));

    acceptAll = await deploy("FixedResultVerifier", [true]);
    rejectAll = await deploy("FixedResultVerifier", [false]);
    registrar = await deploy("Registrar", [acceptAll]);
    // The real registration verifier, when the circuit pipeline has produced it, rejects a zero proof too.
    rejectingRegistrar = await deploy("Registrar", [artifacts.RegistrationVerifier ? await deploy("RegistrationVerifier") : rejectAll]);
    converter = await deploy("EncryptedERC", [eercParams(true, acceptAll)]);
    standalone = await deploy("EncryptedERC", [eercParams(false, acceptAll, 2)]);
    rejecting = await deploy("EncryptedERC", [eercParams(true, rejectAll)]);
    usdc = await deploy("TestUSDC");
    token18 = await deploy("TestToken", [18, 0n]);
    token2 = await deploy("TestToken", [2, 0n]);

    for (const [user, sk] of [
      [alice, 11111n],
      [bob, 22222n],
      [auditor, 33333n],
    ] as const)
      await register(user, sk);
    keys.set(carol, 44444n); // never registered
    for (const user of [alice, bob, carol]) {
      for (const [t, amount] of [
        [usdc, 10n ** 12n],
        [token18, 10n ** 30n],
        [token2, 10n ** 6n],
      ] as const) {
        await send(user, t, TestUSDCAbi, "mint", [user, amount]);
        for (const c of [converter, rejecting]) await send(user, t, TestUSDCAbi, "approve", [c, 2n ** 255n]);
      }
    }
  });

  afterAll(async () => {
    await anvil?.stop();
  });

  describe("BabyJubJub library", () => {
    let h: Address;
    let abi: Abi;
    const call = <T>(fn: string, args: unknown[] = []) => read<T>(h, abi, fn, args);
    const points = [B8, mul(B8, 2n), mul(B8, 987654321n), mul(B8, L - 1n), mul(B8, 2n ** 200n + 12345n)];

    beforeAll(async () => {
      h = await deploy("BabyJubJubHarness");
      abi = artifacts.BabyJubJubHarness.abi as Abi;
    });

    it("uses the documented Base8 and curve equation", async () => {
      expect(await call<XY>("base8")).toEqual(xy(B8));
      for (const p of points) expect(await call<boolean>("isOnCurve", [xy(p)])).toBe(true);
      expect(await call<boolean>("isOnCurve", [{ x: 0n, y: 1n }])).toBe(true);
      expect(await call<boolean>("isOnCurve", [{ x: 1n, y: 1n }])).toBe(false);
      expect(await call<boolean>("isOnCurve", [{ x: B8.x + P, y: B8.y }])).toBe(false);
    });

    it("adds, negates and subtracts like @noble/curves", async () => {
      for (const p of points) {
        for (const q of [...points, ZERO]) {
          expect(await call<XY>("add", [xy(p), xy(q)])).toEqual(xy(p.add(q)));
          expect(await call<XY>("sub", [xy(p), xy(q)])).toEqual(xy(p.subtract(q)));
        }
        expect(await call<XY>("negate", [xy(p)])).toEqual(xy(p.negate()));
        expect(await call<XY>("add", [xy(p), xy(p.negate())])).toEqual({ x: 0n, y: 1n });
      }
    });

    it("multiplies by scalars like @noble/curves", async () => {
      const scalars = [0n, 1n, 2n, 3n, 255n, 1_000_000n, 2n ** 64n - 1n, L - 1n, L, L + 5n, P - 1n, 2n ** 256n - 1n];
      for (const s of scalars) {
        expect(await call<XY>("scalarMul", [xy(B8), s])).toEqual(xy(mul(B8, s)));
      }
      const q = mul(B8, 424242n);
      for (const s of [7n, 2n ** 128n + 1n, L - 2n]) expect(await call<XY>("scalarMul", [xy(q), s])).toEqual(xy(mul(q, s)));
      // A point outside the prime-order subgroup: (0, -1) has order 2.
      expect(await call<XY>("scalarMul", [{ x: 0n, y: P - 1n }, 3n])).toEqual({ x: 0n, y: P - 1n });
      expect(await call<XY>("scalarMul", [{ x: 0n, y: P - 1n }, 2n])).toEqual({ x: 0n, y: 1n });
    });

    it("adds and subtracts ElGamal ciphertexts homomorphically", async () => {
      const pk = mul(B8, 777n);
      const a = enc(5n, 123n, pk);
      const b = enc(3n, 456n, pk);
      const toStruct = (c: Ct) => ({ c1: xy(c.c1), c2: xy(c.c2) });
      expect(await call("addEGCT", [toStruct(a), toStruct(b)])).toEqual(toStruct(enc(8n, 579n, pk)));
      expect(await call("subEGCT", [toStruct(a), toStruct(b)])).toEqual(toStruct(enc(2n, 123n - 456n, pk)));
    });
  });

  it("TestUSDC has 6 decimals and an open faucet", async () => {
    expect(await read<number>(usdc, TestUSDCAbi, "decimals")).toBe(6);
    expect(await read<string>(usdc, TestUSDCAbi, "symbol")).toBe("USDC");
    expect(await read<string>(usdc, TestUSDCAbi, "name")).toBe("Test USDC");
    await send(dave, usdc, TestUSDCAbi, "mint", [dave, 1_234_567n]);
    expect(await read<bigint>(usdc, TestUSDCAbi, "balanceOf", [dave])).toBe(1_234_567n);
  });

  describe("Registrar", () => {
    const daveSk = 55555n;
    const davePk = () => B8.multiply(daveSk);
    const reg = (signals: bigint[]) => [{ proofPoints: NO_PROOF, publicSignals: signals }];

    it("rejects a sender other than the SenderAddress signal", async () => {
      await expectRevert(dave, registrar, RegistrarAbi, "register", reg(registerSignals(alice, davePk())), "InvalidSender");
      const padded = BigInt(dave) + 2n ** 160n;
      await expectRevert(dave, registrar, RegistrarAbi, "register", reg(registerSignals(dave, davePk(), { 2: padded })), "InvalidSender");
    });

    it("rejects another chain id", async () => {
      await expectRevert(dave, registrar, RegistrarAbi, "register", reg(registerSignals(dave, davePk(), { 3: 43113n })), "InvalidChainId");
    });

    it("rejects a registration hash outside the field", async () => {
      await expectRevert(
        dave,
        registrar,
        RegistrarAbi,
        "register",
        reg(registerSignals(dave, davePk(), { 4: P })),
        "InvalidRegistrationHash",
      );
    });

    it("rejects keys that are not curve points or are the identity", async () => {
      await expectRevert(
        dave,
        registrar,
        RegistrarAbi,
        "register",
        reg(registerSignals(dave, davePk(), { 0: 1n, 1: 2n })),
        "InvalidPublicKey",
      );
      await expectRevert(
        dave,
        registrar,
        RegistrarAbi,
        "register",
        reg(registerSignals(dave, davePk(), { 0: 0n, 1: 1n })),
        "InvalidPublicKey",
      );
    });

    it("rejects an invalid proof", async () => {
      await expectRevert(dave, rejectingRegistrar, RegistrarAbi, "register", reg(registerSignals(dave, davePk())), "InvalidProof");
    });

    it("registers, then refuses a reused hash and a second registration", async () => {
      const signals = registerSignals(dave, davePk());
      const receipt = await send(dave, registrar, RegistrarAbi, "register", reg(signals));
      const [ev] = events(receipt, "Register");
      expect(ev.args).toEqual({ user: dave, publicKey: xy(davePk()) });
      expect(await read<boolean>(registrar, RegistrarAbi, "isUserRegistered", [dave])).toBe(true);
      expect(await read<boolean>(registrar, RegistrarAbi, "isUserRegistered", [carol])).toBe(false);
      expect(await read<bigint[]>(registrar, RegistrarAbi, "getUserPublicKey", [dave])).toEqual(pkWords(davePk()));
      expect(await read<bigint[]>(registrar, RegistrarAbi, "getUserPublicKey", [carol])).toEqual([0n, 0n]);
      expect(await read<boolean>(registrar, RegistrarAbi, "isRegistered", [signals[4]])).toBe(true);
      expect(await read<bigint[]>(registrar, RegistrarAbi, "userPublicKeys", [dave])).toEqual(pkWords(davePk()));

      const reused = registerSignals(carol, pkOf(carol), { 4: signals[4] });
      await expectRevert(carol, registrar, RegistrarAbi, "register", reg(reused), "RegistrationHashAlreadyUsed");
      await expectRevert(dave, registrar, RegistrarAbi, "register", reg(registerSignals(dave, davePk())), "UserAlreadyRegistered", [dave]);
    });

    it("requires a verifier address", async () => {
      await expectDeployRevert("Registrar", ["0x0000000000000000000000000000000000000000"], "ZeroAddress");
    });
  });

  async function expectDeployRevert(name: string, args: unknown[], errorName: string): Promise<void> {
    const { abi, bytecode } = artifacts[name];
    try {
      await pub.call({ account: owner, data: encodeDeployData({ abi: abi as Abi, bytecode, args } as never) });
    } catch (err) {
      const data = (err as BaseError).walk((e) => typeof (e as { data?: unknown }).data === "string") as { data?: Hex } | null;
      if (!data?.data) throw err;
      expect(decodeErrorResult({ abi: abi as Abi, data: data.data }).errorName).toBe(errorName);
      return;
    }
    throw new Error(`deploying ${name} did not revert`);
  }

  describe("EncryptedERC, converter mode", () => {
    const zeroCt = (): Ct => ({ c1: B8, c2: B8 });

    it("exposes its configuration", async () => {
      // As in the audited contract, a converter takes its tokens' names and keeps none of its own.
      expect(await read<string>(converter, EncryptedERCAbi, "name")).toBe("");
      expect(await read<string>(converter, EncryptedERCAbi, "symbol")).toBe("");
      expect(await read<string>(standalone, EncryptedERCAbi, "name")).toBe("Encrypted Token");
      for (const v of ["transferVerifier", "withdrawVerifier", "mintVerifier", "burnVerifier"]) {
        expect(await read<Address>(converter, EncryptedERCAbi, v)).toBe(acceptAll);
      }
      expect(await read<bigint>(converter, EncryptedERCAbi, "nextTokenId")).toBe(1n);
      expect(await read<Address[]>(converter, EncryptedERCAbi, "getTokens")).toEqual([]);
      expect(await read<number>(converter, EncryptedERCAbi, "decimals")).toBe(6);
      expect(await read<boolean>(converter, EncryptedERCAbi, "isConverter")).toBe(true);
      expect(await read<Address>(converter, EncryptedERCAbi, "registrar")).toBe(registrar);
      expect(await read<Address>(converter, EncryptedERCAbi, "owner")).toBe(owner);
      expect(await read<boolean>(converter, EncryptedERCAbi, "isAuditorKeySet")).toBe(false);
      expect(await read<Address>(converter, EncryptedERCAbi, "auditor")).toBe("0x0000000000000000000000000000000000000000");
    });

    it("requires the verifiers its mode uses", async () => {
      const zero = "0x0000000000000000000000000000000000000000";
      await expectDeployRevert("EncryptedERC", [{ ...eercParams(true, acceptAll), withdrawVerifier: zero }], "ZeroAddress");
      await expectDeployRevert("EncryptedERC", [{ ...eercParams(false, acceptAll), mintVerifier: zero }], "ZeroAddress");
      await expectDeployRevert("EncryptedERC", [{ ...eercParams(true, acceptAll), registrar: zero }], "ZeroAddress");
    });

    it("reverts deposit, transfer and withdraw until an auditor is set", async () => {
      await expectRevert(alice, converter, EncryptedERCAbi, "deposit", [1n, usdc, pct(1n)], "AuditorNotSet");
      const t = transferProof({ sender: alice, receiver: bob, current: zeroCt(), senderVTT: zeroCt(), receiverVTT: zeroCt() });
      await expectRevert(alice, converter, EncryptedERCAbi, "transfer", [bob, 1n, t, pct(0n)], "AuditorNotSet");
      await expectRevert(alice, converter, EncryptedERCAbi, "withdraw", [1n, withdrawProof(alice, 1n, zeroCt()), pct(0n)], "AuditorNotSet");
    });

    it("lets only the owner set a registered auditor", async () => {
      await expectRevert(alice, converter, EncryptedERCAbi, "setAuditorPublicKey", [auditor], "OwnableUnauthorizedAccount", [alice]);
      await expectRevert(owner, converter, EncryptedERCAbi, "setAuditorPublicKey", [carol], "UserNotRegistered", [carol]);
      for (const c of [converter, rejecting]) {
        const receipt = await send(owner, c, EncryptedERCAbi, "setAuditorPublicKey", [auditor]);
        expect(events(receipt, "AuditorChanged")[0].args).toEqual({
          oldAuditor: "0x0000000000000000000000000000000000000000",
          newAuditor: auditor,
        });
      }
      expect(await read<boolean>(converter, EncryptedERCAbi, "isAuditorKeySet")).toBe(true);
      expect(await read<Address>(converter, EncryptedERCAbi, "auditor")).toBe(auditor);
      expect(await read<bigint[]>(converter, EncryptedERCAbi, "auditorPublicKey")).toEqual(pkWords(pkOf(auditor)));
    });

    it("rejects deposits it cannot account for", async () => {
      const noDecimals = await deploy("NoDecimalsToken");
      const hugeDecimals = await deploy("TestToken", [90, 0n]);
      const feeToken = await deploy("TestToken", [6, 100n]);
      await send(alice, feeToken, TestUSDCAbi, "mint", [alice, 10n ** 9n]);
      await send(alice, feeToken, TestUSDCAbi, "approve", [converter, 10n ** 9n]);

      await expectRevert(carol, converter, EncryptedERCAbi, "deposit", [1n, usdc, pct(1n)], "UserNotRegistered", [carol]);
      await expectRevert(alice, converter, EncryptedERCAbi, "deposit", [1n, bob, pct(1n)], "InvalidToken", [bob]);
      await expectRevert(alice, converter, EncryptedERCAbi, "deposit", [1n, noDecimals, pct(1n)], "TokenDecimalsUnavailable", [noDecimals]);
      await expectRevert(alice, converter, EncryptedERCAbi, "deposit", [1n, hugeDecimals, pct(1n)], "UnsupportedTokenDecimals", [
        hugeDecimals,
        90n,
      ]);
      await expectRevert(alice, converter, EncryptedERCAbi, "deposit", [0n, usdc, pct(1n)], "ZeroAmount");
      await expectRevert(alice, converter, EncryptedERCAbi, "deposit", [10n ** 12n - 1n, token18, pct(1n)], "ZeroAmount");
      await expectRevert(alice, converter, EncryptedERCAbi, "deposit", [L / 10n ** 4n + 1n, token2, pct(1n)], "AmountTooLarge");
      await expectRevert(alice, converter, EncryptedERCAbi, "deposit", [1_000_000n, feeToken, pct(1n)], "TransferAmountMismatch", [
        1_000_000n,
        990_000n,
      ]);
      await expectRevert(alice, standalone, EncryptedERCAbi, "deposit", [1n, usdc, pct(1n)], "ConverterOnly");
    });

    it("credits deposits as Enc(value, 1, PK) = (Base8, PK + value·Base8), the PCT at t and the snapshot at t + 1", async () => {
      const first = await send(alice, converter, EncryptedERCAbi, "deposit", [5_000_000n, usdc, pct(10n)]);
      expect(events(first, "Deposit")[0].args).toEqual({ user: alice, amount: 5_000_000n, dust: 0n, tokenId: 1n });
      await send(alice, converter, EncryptedERCAbi, "deposit", [2_000_000n, usdc, pct(20n)]);

      expect(await read<bigint>(converter, EncryptedERCAbi, "tokenIds", [usdc])).toBe(1n);
      expect(await read<Address>(converter, EncryptedERCAbi, "tokenAddresses", [1n])).toBe(usdc);
      expect(await read<bigint>(usdc, TestUSDCAbi, "balanceOf", [converter])).toBe(7_000_000n);

      expect(await read<bigint>(converter, EncryptedERCAbi, "nextTokenId")).toBe(2n);
      expect(await read<Address[]>(converter, EncryptedERCAbi, "getTokens")).toEqual([usdc]);
      expect(await read<Address>(converter, EncryptedERCAbi, "tokens", [0n])).toBe(usdc);
      const bal = await balance(converter, alice, 1n);
      // The first deposit replaces the empty EGCT, the second adds: (2·Base8, 2·PK + 7_000_000·Base8).
      expect(ctEqual(bal.ct, { c1: mul(B8, 2n), c2: mul(pkOf(alice), 2n).add(mul(B8, 7_000_000n)) })).toBe(true);
      expect(bal.nonce).toBe(0n);
      // Each deposit takes two transaction indexes: its PCT's, then its snapshot's.
      expect(bal.transactionIndex).toBe(4n);
      expect(bal.amountPCTs).toEqual([
        { pct: [...pct(10n)], index: 0n },
        { pct: [...pct(20n)], index: 2n },
      ]);
      const [scalars] = [await read<[{ c1: XY; c2: XY }, bigint, bigint]>(converter, EncryptedERCAbi, "balances", [alice, 1n])];
      expect(scalars).toEqual([bal.raw, 0n, 4n]);
      const byAddress = await read<unknown[]>(converter, EncryptedERCAbi, "getBalanceFromTokenAddress", [alice, usdc]);
      expect(byAddress).toEqual(await read<unknown[]>(converter, EncryptedERCAbi, "balanceOf", [alice, 1n]));
      // Never-credited accounts read as all zeros.
      expect((await balance(converter, bob, 1n)).raw).toEqual({ c1: { x: 0n, y: 0n }, c2: { x: 0n, y: 0n } });
    });

    it("scales token decimals, returning dust and never pulling it", async () => {
      const before = await read<bigint>(token18, TestUSDCAbi, "balanceOf", [alice]);
      const amount = 1_500_000_000_123n; // 1.500000000000123 at 18 decimals
      const r18 = await send(alice, converter, EncryptedERCAbi, "deposit", [amount, token18, pct(30n)]);
      expect(events(r18, "Deposit")[0].args).toEqual({ user: alice, amount, dust: 500_000_000_123n, tokenId: 2n });
      expect(before - (await read<bigint>(token18, TestUSDCAbi, "balanceOf", [alice]))).toBe(10n ** 12n);
      expect(ctEqual((await balance(converter, alice, 2n)).ct, { c1: B8, c2: pkOf(alice).add(mul(B8, 1n)) })).toBe(true);

      const r2 = await send(alice, converter, EncryptedERCAbi, "deposit", [150n, token2, pct(40n)]);
      expect(events(r2, "Deposit")[0].args).toEqual({ user: alice, amount: 150n, dust: 0n, tokenId: 3n });
      expect(ctEqual((await balance(converter, alice, 3n)).ct, { c1: B8, c2: pkOf(alice).add(mul(B8, 1_500_000n)) })).toBe(true);
    });

    it("refuses deposits of a blacklisted token, set by the owner only", async () => {
      await expectRevert(alice, converter, EncryptedERCAbi, "setTokenBlacklist", [token2, true], "OwnableUnauthorizedAccount", [alice]);
      await send(owner, converter, EncryptedERCAbi, "setTokenBlacklist", [token2, true]);
      expect(await read<boolean>(converter, EncryptedERCAbi, "blacklistedTokens", [token2])).toBe(true);
      await expectRevert(alice, converter, EncryptedERCAbi, "deposit", [150n, token2, pct(41n)], "TokenBlacklisted", [token2]);
      await send(owner, converter, EncryptedERCAbi, "setTokenBlacklist", [token2, false]);
    });

    it("rejects transfers that do not match registrations, the auditor or a current snapshot", async () => {
      const current = (await balance(converter, alice, 1n)).ct;
      const vtt = enc(1n, 5n, pkOf(alice));
      const rvtt = enc(1n, 6n, pkOf(bob));
      const proof = (overrides: Partial<Record<number, bigint>> = {}, sender = alice, receiver = bob) =>
        transferProof({ sender, receiver, current, senderVTT: vtt, receiverVTT: rvtt, overrides });
      const tr = (from: Address, to: Address, tokenId: bigint, p: unknown, error: string, args?: unknown[], on = converter) =>
        expectRevert(from, on, EncryptedERCAbi, "transfer", [to, tokenId, p, pct(0n)], error, args);

      await tr(carol, bob, 1n, proof({}, carol), "UserNotRegistered", [carol]);
      await tr(alice, carol, 1n, proof({}, alice, carol), "UserNotRegistered", [carol]);
      await tr(alice, bob, 1n, proof({ 0: pkOf(bob).x, 1: pkOf(bob).y }), "InvalidSenderPublicKey");
      await tr(alice, bob, 1n, proof({ 10: pkOf(alice).x, 11: pkOf(alice).y }), "InvalidReceiverPublicKey");
      await tr(alice, bob, 1n, proof({ 23: pkOf(bob).x, 24: pkOf(bob).y }), "InvalidAuditorPublicKey");
      await tr(alice, bob, 99n, proof(), "UnknownToken", [99n]);
      await tr(alice, bob, 0n, proof(), "UnknownToken", [0n]);
      await tr(alice, bob, 1n, proof({ 16: P }), "InvalidPublicSignal");
      await tr(alice, bob, 1n, proof({ 5: current.c2.y + 1n }), "InvalidBalanceSnapshot");
      await tr(alice, bob, 2n, proof(), "InvalidBalanceSnapshot");

      await send(alice, rejecting, EncryptedERCAbi, "deposit", [1_000_000n, usdc, pct(1n)]);
      const rejCurrent = (await balance(rejecting, alice, 1n)).ct;
      const rejProof = transferProof({ sender: alice, receiver: bob, current: rejCurrent, senderVTT: vtt, receiverVTT: rvtt });
      await tr(alice, bob, 1n, rejProof, "InvalidProof", undefined, rejecting);
    });

    it("transfers: sender EGCT minus its VTT, receiver EGCT plus its VTT, PCTs and nonces updated", async () => {
      const before = await balance(converter, alice, 1n);
      const value = 1_200_000n;
      const senderVTT = enc(value, 777n, pkOf(alice));
      const receiverVTT = enc(value, 888n, pkOf(bob));
      const proof = transferProof({
        sender: alice,
        receiver: bob,
        current: before.ct,
        senderVTT,
        receiverVTT,
        receiverPCT: pct(50n),
        auditorPCT: pct(60n),
      });
      const receipt = await send(alice, converter, EncryptedERCAbi, "transfer", [bob, 1n, proof, pct(70n)]);
      expect(events(receipt, "PrivateTransfer")[0].args).toEqual({
        from: alice,
        to: bob,
        auditorPCT: [...pct(60n)],
        auditorAddress: auditor,
      });

      const a = await balance(converter, alice, 1n);
      expect(ctEqual(a.ct, { c1: before.ct.c1.subtract(senderVTT.c1), c2: before.ct.c2.subtract(senderVTT.c2) })).toBe(true);
      expect(a.nonce).toBe(1n);
      expect(a.transactionIndex).toBe(5n);
      expect(a.amountPCTs).toEqual([]);
      expect(a.balancePCT).toEqual([...pct(70n)]);

      const b = await balance(converter, bob, 1n);
      expect(ctEqual(b.ct, receiverVTT)).toBe(true);
      expect(b.amountPCTs).toEqual([{ pct: [...pct(50n)], index: 0n }]);
      expect(b.nonce).toBe(0n);

      // The spent snapshot is gone: replaying the proof fails.
      await expectRevert(alice, converter, EncryptedERCAbi, "transfer", [bob, 1n, proof, pct(70n)], "InvalidBalanceSnapshot");
    });

    it("keeps a snapshot valid across credits at the same nonce and drops only PCTs it covers", async () => {
      const e1 = (await balance(converter, alice, 1n)).ct; // nonce 1, recorded at transaction index 4
      // bob pays alice: a credit lands after alice's snapshot.
      const bobCurrent = (await balance(converter, bob, 1n)).ct;
      const credit = enc(200_000n, 999n, pkOf(alice));
      await send(bob, converter, EncryptedERCAbi, "transfer", [
        alice,
        1n,
        transferProof({
          sender: bob,
          receiver: alice,
          current: bobCurrent,
          senderVTT: enc(200_000n, 1n, pkOf(bob)),
          receiverVTT: credit,
          receiverPCT: pct(80n),
        }),
        pct(81n),
      ]);
      const e2 = await balance(converter, alice, 1n);
      expect(ctEqual(e2.ct, { c1: e1.c1.add(credit.c1), c2: e1.c2.add(credit.c2) })).toBe(true);
      expect(e2.amountPCTs).toEqual([{ pct: [...pct(80n)], index: 5n }]);

      // alice proves against e1 (computed before the credit): still valid, and the credit survives.
      const vtt = enc(300_000n, 4242n, pkOf(alice));
      await send(alice, converter, EncryptedERCAbi, "transfer", [
        bob,
        1n,
        transferProof({ sender: alice, receiver: bob, current: e1, senderVTT: vtt, receiverVTT: enc(300_000n, 2n, pkOf(bob)) }),
        pct(90n),
      ]);
      const e3 = await balance(converter, alice, 1n);
      expect(ctEqual(e3.ct, { c1: e2.ct.c1.subtract(vtt.c1), c2: e2.ct.c2.subtract(vtt.c2) })).toBe(true);
      expect(e3.nonce).toBe(2n);
      expect(e3.amountPCTs).toEqual([{ pct: [...pct(80n)], index: 5n }]);
      expect(e3.balancePCT).toEqual([...pct(90n)]);

      // Both e1 and e2 belonged to nonce 1 and are now stale; the new EGCT is the valid snapshot.
      const stale = transferProof({ sender: alice, receiver: bob, current: e2.ct, senderVTT: vtt, receiverVTT: vtt });
      await expectRevert(alice, converter, EncryptedERCAbi, "transfer", [bob, 1n, stale, pct(0n)], "InvalidBalanceSnapshot");

      // A spend against the newest snapshot folds the remaining credit into balancePCT.
      await send(alice, converter, EncryptedERCAbi, "transfer", [
        bob,
        1n,
        transferProof({
          sender: alice,
          receiver: bob,
          current: e3.ct,
          senderVTT: enc(1n, 3n, pkOf(alice)),
          receiverVTT: enc(1n, 3n, pkOf(bob)),
        }),
        pct(91n),
      ]);
      const e4 = await balance(converter, alice, 1n);
      expect(e4.amountPCTs).toEqual([]);
      expect(e4.nonce).toBe(3n);

      // Positions restart once every PCT is dropped: the next credit is listed alone.
      await send(alice, converter, EncryptedERCAbi, "deposit", [1n, usdc, pct(92n)]);
      expect((await balance(converter, alice, 1n)).amountPCTs).toEqual([{ pct: [...pct(92n)], index: e4.transactionIndex }]);
    });

    it("rejects withdrawals it cannot honour", async () => {
      const current = (await balance(converter, alice, 1n)).ct;
      const w = (value: bigint, tokenId: bigint, overrides: Partial<Record<number, bigint>> = {}, ct = current) =>
        [tokenId, withdrawProof(alice, value, ct, overrides), pct(0n)] as const;
      await expectRevert(carol, converter, EncryptedERCAbi, "withdraw", w(1n, 1n), "UserNotRegistered", [carol]);
      await expectRevert(alice, converter, EncryptedERCAbi, "withdraw", w(1n, 7n), "UnknownToken", [7n]);
      await expectRevert(alice, converter, EncryptedERCAbi, "withdraw", w(1n, 1n, { 1: 1n }), "InvalidSenderPublicKey");
      await expectRevert(alice, converter, EncryptedERCAbi, "withdraw", w(1n, 1n, { 8: 1n }), "InvalidAuditorPublicKey");
      await expectRevert(alice, converter, EncryptedERCAbi, "withdraw", w(1n, 1n, { 12: P + 1n }), "InvalidPublicSignal");
      await expectRevert(alice, converter, EncryptedERCAbi, "withdraw", w(L, 1n), "AmountTooLarge");
      await expectRevert(alice, converter, EncryptedERCAbi, "withdraw", w(1n, 1n, { 6: 5n }), "InvalidBalanceSnapshot");
      const t3 = (await balance(converter, alice, 3n)).ct;
      await expectRevert(alice, converter, EncryptedERCAbi, "withdraw", w(12_345n, 3n, {}, t3), "AmountNotRepresentable", [12_345n]);
      const rej = (await balance(rejecting, alice, 1n)).ct;
      await expectRevert(alice, rejecting, EncryptedERCAbi, "withdraw", w(1n, 1n, {}, rej), "InvalidProof");
      await expectRevert(alice, standalone, EncryptedERCAbi, "withdraw", w(1n, 0n), "ConverterOnly");
    });

    it("withdraws: subtracts Enc(value, 1, PK) = (Base8, PK + value·Base8) and pays out the scaled token amount", async () => {
      const before = await balance(converter, alice, 1n);
      const usdcBefore = await read<bigint>(usdc, TestUSDCAbi, "balanceOf", [alice]);
      const receipt = await send(alice, converter, EncryptedERCAbi, "withdraw", [1n, withdrawProof(alice, 500_000n, before.ct), pct(95n)]);
      expect(events(receipt, "Withdraw")[0].args).toEqual({
        user: alice,
        amount: 500_000n,
        tokenId: 1n,
        auditorPCT: [...pct(300n)],
        auditorAddress: auditor,
      });
      expect((await read<bigint>(usdc, TestUSDCAbi, "balanceOf", [alice])) - usdcBefore).toBe(500_000n);
      const after = await balance(converter, alice, 1n);
      expect(ctEqual(after.ct, { c1: before.ct.c1.subtract(B8), c2: before.ct.c2.subtract(pkOf(alice)).subtract(mul(B8, 500_000n)) })).toBe(
        true,
      );
      expect(after.nonce).toBe(before.nonce + 1n);
      expect(after.amountPCTs).toEqual([]);

      // Fewer token decimals than the eERC: 1_000_000 units at 6 decimals are 100 at 2.
      const t3 = (await balance(converter, alice, 3n)).ct;
      const t2Before = await read<bigint>(token2, TestUSDCAbi, "balanceOf", [alice]);
      await send(alice, converter, EncryptedERCAbi, "withdraw", [3n, withdrawProof(alice, 1_000_000n, t3), pct(96n)]);
      expect((await read<bigint>(token2, TestUSDCAbi, "balanceOf", [alice])) - t2Before).toBe(100n);
      // More token decimals: 1 unit at 6 decimals is 10^12 at 18.
      const t2 = (await balance(converter, alice, 2n)).ct;
      const t18Before = await read<bigint>(token18, TestUSDCAbi, "balanceOf", [alice]);
      await send(alice, converter, EncryptedERCAbi, "withdraw", [2n, withdrawProof(alice, 1n, t2), pct(97n)]);
      expect((await read<bigint>(token18, TestUSDCAbi, "balanceOf", [alice])) - t18Before).toBe(10n ** 12n);
    });

    it("emits PrivateMessage for non-empty messages of the overloads, and for sendEncryptedMetadata, with the audited message types", async () => {
      const msg = "0xdeadbeef" as Hex;
      const meta = (from: Address, to: Address, messageType: string) => ({
        from,
        to,
        metadata: { messageFrom: from, messageTo: to, messageType, encryptedMsg: msg },
      });

      const dep = await send(alice, converter, EncryptedERCAbi, "deposit", [1_000n, usdc, pct(1n), msg]);
      expect(events(dep, "Deposit")).toHaveLength(1);
      expect(events(dep, "PrivateMessage")[0].args).toEqual(meta(alice, alice, "DEPOSIT"));

      const current = (await balance(converter, alice, 1n)).ct;
      const t = transferProof({
        sender: alice,
        receiver: bob,
        current,
        senderVTT: enc(5n, 9n, pkOf(alice)),
        receiverVTT: enc(5n, 9n, pkOf(bob)),
      });
      const tr = await send(alice, converter, EncryptedERCAbi, "transfer", [bob, 1n, t, pct(2n), msg]);
      expect(events(tr, "PrivateTransfer")).toHaveLength(1);
      expect(events(tr, "PrivateMessage")[0].args).toEqual(meta(alice, bob, "PRIVATE_TRANSFER"));

      const after = (await balance(converter, alice, 1n)).ct;
      const wd = await send(alice, converter, EncryptedERCAbi, "withdraw", [1n, withdrawProof(alice, 5n, after), pct(3n), msg]);
      expect(events(wd, "Withdraw")).toHaveLength(1);
      expect(events(wd, "PrivateMessage")[0].args).toEqual(meta(alice, alice, "WITHDRAW"));

      const md = await send(bob, converter, EncryptedERCAbi, "sendEncryptedMetadata", [alice, msg]);
      expect(events(md, "PrivateMessage")[0].args).toEqual(meta(bob, alice, "MESSAGE"));
      const silent = await send(alice, converter, EncryptedERCAbi, "deposit", [1_000n, usdc, pct(4n), "0x"]);
      expect(events(silent, "Deposit")).toHaveLength(1);
      expect(events(silent, "PrivateMessage")).toHaveLength(0);
      await expectRevert(bob, converter, EncryptedERCAbi, "sendEncryptedMetadata", [carol, msg], "UserNotRegistered", [carol]);
      await expectRevert(carol, converter, EncryptedERCAbi, "sendEncryptedMetadata", [bob, msg], "UserNotRegistered", [carol]);
    });

    it("refuses the standalone-only functions", async () => {
      const vtt = enc(1n, 1n, pkOf(alice));
      await expectRevert(owner, converter, EncryptedERCAbi, "privateMint", [alice, mintProof(alice, vtt, 1n)], "StandaloneOnly");
      await expectRevert(alice, converter, EncryptedERCAbi, "privateBurn", [burnProof(alice, vtt, vtt), pct(0n)], "StandaloneOnly");
    });
  });

  describe("EncryptedERC, standalone mode", () => {
    const vtt = (value: bigint, r: bigint) => enc(value, r, pkOf(alice));

    it("reverts mint and burn until an auditor is set", async () => {
      await expectRevert(owner, standalone, EncryptedERCAbi, "privateMint", [alice, mintProof(alice, vtt(1n, 1n), 1n)], "AuditorNotSet");
      await expectRevert(
        alice,
        standalone,
        EncryptedERCAbi,
        "privateBurn",
        [burnProof(alice, vtt(1n, 1n), vtt(1n, 1n)), pct(0n)],
        "AuditorNotSet",
      );
      await send(owner, standalone, EncryptedERCAbi, "setAuditorPublicKey", [auditor]);
    });

    it("rejects mints that are not the owner's, for another chain, reused or mis-keyed", async () => {
      const m = (user: Address, overrides: Partial<Record<number, bigint>> = {}) => [user, mintProof(user, vtt(1n, 1n), 77n, overrides)];
      await expectRevert(alice, standalone, EncryptedERCAbi, "privateMint", m(alice), "OwnableUnauthorizedAccount", [alice]);
      await expectRevert(owner, standalone, EncryptedERCAbi, "privateMint", m(carol), "UserNotRegistered", [carol]);
      await expectRevert(owner, standalone, EncryptedERCAbi, "privateMint", m(alice, { 0: 43113n }), "InvalidChainId");
      await expectRevert(owner, standalone, EncryptedERCAbi, "privateMint", m(alice, { 1: P }), "InvalidNullifier");
      await expectRevert(owner, standalone, EncryptedERCAbi, "privateMint", m(alice, { 2: 5n }), "InvalidReceiverPublicKey");
      await expectRevert(owner, standalone, EncryptedERCAbi, "privateMint", m(alice, { 16: 5n }), "InvalidAuditorPublicKey");
      await expectRevert(owner, standalone, EncryptedERCAbi, "privateMint", m(alice, { 9: P }), "InvalidPublicSignal");
    });

    it("mints, burns and transfers token 0", async () => {
      const minted = vtt(10_000n, 31n);
      const receipt = await send(owner, standalone, EncryptedERCAbi, "privateMint", [alice, mintProof(alice, minted, 77n)]);
      expect(events(receipt, "PrivateMint")[0].args).toEqual({ user: alice, auditorPCT: [...pct(500n)], auditorAddress: auditor });
      await expectRevert(owner, standalone, EncryptedERCAbi, "privateMint", [alice, mintProof(alice, minted, 77n)], "NullifierAlreadyUsed");
      let bal = await balance(standalone, alice, 0n);
      expect(ctEqual(bal.ct, minted)).toBe(true);
      expect(bal.amountPCTs).toEqual([{ pct: [...pct(400n)], index: 0n }]);

      const msg = "0x01" as Hex;
      const minted2 = vtt(5n, 32n);
      const withMsg = await send(owner, standalone, EncryptedERCAbi, "privateMint", [alice, mintProof(alice, minted2, 78n), msg]);
      expect(events(withMsg, "PrivateMessage")[0].args).toMatchObject({
        from: owner,
        to: alice,
        metadata: { messageType: "PRIVATE_MINT" },
      });
      expect(await read<boolean>(standalone, EncryptedERCAbi, "alreadyMinted", [77n])).toBe(true);

      bal = await balance(standalone, alice, 0n);
      const vtb = vtt(3_000n, 41n);
      // The overload with a message names a registered user first; the burn is the sender's.
      await expectRevert(
        alice,
        standalone,
        EncryptedERCAbi,
        "privateBurn",
        [carol, burnProof(alice, bal.ct, vtb), pct(33n), msg],
        "UserNotRegistered",
        [carol],
      );
      const burn = await send(alice, standalone, EncryptedERCAbi, "privateBurn", [bob, burnProof(alice, bal.ct, vtb), pct(33n), msg]);
      expect(events(burn, "PrivateBurn")[0].args).toEqual({ user: alice, auditorPCT: [...pct(600n)], auditorAddress: auditor });
      expect(events(burn, "PrivateMessage")[0].args).toMatchObject({ from: alice, to: alice, metadata: { messageType: "PRIVATE_BURN" } });
      const burnt = await balance(standalone, alice, 0n);
      expect(ctEqual(burnt.ct, { c1: bal.ct.c1.subtract(vtb.c1), c2: bal.ct.c2.subtract(vtb.c2) })).toBe(true);
      expect(burnt.amountPCTs).toEqual([]);
      expect(burnt.balancePCT).toEqual([...pct(33n)]);
      expect(await read<unknown[]>(standalone, EncryptedERCAbi, "balanceOfStandalone", [alice])).toEqual(
        await read<unknown[]>(standalone, EncryptedERCAbi, "balanceOf", [alice, 0n]),
      );

      const t = transferProof({
        sender: alice,
        receiver: bob,
        current: burnt.ct,
        senderVTT: vtt(1n, 5n),
        receiverVTT: enc(1n, 5n, pkOf(bob)),
      });
      await expectRevert(alice, standalone, EncryptedERCAbi, "transfer", [bob, 1n, t, pct(0n)], "UnknownToken", [1n]);
      await send(alice, standalone, EncryptedERCAbi, "transfer", [bob, 0n, t, pct(0n)]);
      expect(ctEqual((await balance(standalone, bob, 0n)).ct, enc(1n, 5n, pkOf(bob)))).toBe(true);
    });
  });
});
