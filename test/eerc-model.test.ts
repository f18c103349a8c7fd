/**
 * The eERC balance model, as `eerc-interface.md` documents it for the audited versions, against
 * the contracts: a long seeded sequence of deposits, transfers (including credits that land
 * between a snapshot and the spend proven against it, and self-transfers), withdrawals and stale
 * spends, after each of which `balanceOf` of every account must equal what the model predicts.
 * Proofs are not what is tested here, so every verifier is the test-only FixedResultVerifier;
 * with EERC_AUDITED_DIR set the same sequence also runs on the audited contracts.
 */
import { type Abi, type Address, encodeAbiParameters, type Hex, keccak256 } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EncryptedERCAbi } from "../abis/EncryptedERCAbi.js";
import { RegistrarAbi } from "../abis/RegistrarAbi.js";
import { TestUSDCAbi } from "../abis/TestUSDCAbi.js";
import { buildAudited, deployAuditedEerc } from "../scripts/interop/build-audited.js";
import { loadArtifact } from "../src/build/contracts.js";
import { type Anvil, startAnvil } from "../src/chain/anvil.js";
import { type ChainClients, connectChain } from "../src/chain/clients.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { CIRCUIT_NAMES, type CircuitName } from "../src/eerc/artifacts.js";
import { readBalance, toBalanceView } from "../src/eerc/balance-read.js";
import { addPoints, BASE8, mulBase, type Point, subPoints } from "../src/eerc/curve.js";
import { type EGCT, encryptElGamal } from "../src/eerc/elgamal.js";
import { NO_PROOF } from "./contract-helpers.js";

const accounts = ANVIL_KEYS.map((k) => privateKeyToAccount(k));
const USERS = [1, 2, 3, 4].map((i) => accounts[i]!.address);
const AUDITOR = accounts[9]!.address;
const STEPS = 150;

/** A seeded generator (xorshift64*), so a failure can be replayed. */
function rng(seed: bigint) {
  let s = seed;
  const next = () => {
    s ^= s >> 12n;
    s ^= (s << 25n) & 0xffffffffffffffffn;
    s ^= s >> 27n;
    return ((s * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn) >> 11n;
  };
  return { int: (n: number) => Number(next() % BigInt(n)), big: (n: bigint) => next() % n };
}

// ------------------------------------------------------------------ the documented model

type Words7 = bigint[];
type ModelBalance = {
  /** null: never credited (the contract stores all zeros). */
  eGCT: EGCT | null;
  nonce: bigint;
  transactionIndex: bigint;
  pcts: Map<bigint, Words7>;
  balancePCT: Words7;
  /** snapshot key (hash of the EGCT and the nonce) → its transaction index */
  snapshots: Map<string, bigint>;
};

const snapshotKey = (e: EGCT, nonce: bigint) =>
  keccak256(
    encodeAbiParameters(
      [{ type: "uint256" }, { type: "uint256" }],
      [
        BigInt(
          keccak256(
            encodeAbiParameters(
              [{ type: "uint256" }, { type: "uint256" }, { type: "uint256" }, { type: "uint256" }],
              [e.c1[0], e.c1[1], e.c2[0], e.c2[1]],
            ),
          ),
        ),
        nonce,
      ],
    ),
  );
const add = (a: EGCT, b: EGCT): EGCT => ({ c1: addPoints(a.c1, b.c1), c2: addPoints(a.c2, b.c2) });
const sub = (a: EGCT, b: EGCT): EGCT => ({ c1: subPoints(a.c1, b.c1), c2: subPoints(a.c2, b.c2) });
/** How the contract encrypts a public amount: randomness 1. */
const publicAmount = (value: bigint, pk: Point): EGCT => ({ c1: [...BASE8], c2: addPoints(pk, mulBase(value)) });

const model = {
  empty: (): ModelBalance => ({
    eGCT: null,
    nonce: 0n,
    transactionIndex: 0n,
    pcts: new Map(),
    balancePCT: [0n, 0n, 0n, 0n, 0n, 0n, 0n],
    snapshots: new Map(),
  }),
  snapshot(b: ModelBalance, index: bigint) {
    b.snapshots.set(snapshotKey(b.eGCT!, b.nonce), index);
  },
  credit(b: ModelBalance, e: EGCT, pct: Words7) {
    b.eGCT = b.eGCT ? add(b.eGCT, e) : e;
    model.snapshot(b, b.transactionIndex);
    b.pcts.set(b.transactionIndex, pct);
    b.transactionIndex += 1n;
  },
  deposit(b: ModelBalance, e: EGCT, pct: Words7) {
    b.eGCT = b.eGCT ? add(b.eGCT, e) : e;
    b.pcts.set(b.transactionIndex, pct);
    model.snapshot(b, b.transactionIndex + 1n);
    b.transactionIndex += 2n;
  },
  /** The index of a snapshot valid at the current nonce, or undefined. */
  valid: (b: ModelBalance, e: EGCT) => b.snapshots.get(snapshotKey(e, b.nonce)),
  spend(b: ModelBalance, proven: EGCT, e: EGCT, balancePCT: Words7) {
    const s = model.valid(b, proven)!;
    b.eGCT = sub(b.eGCT!, e);
    for (const i of [...b.pcts.keys()]) if (i <= s) b.pcts.delete(i);
    b.balancePCT = balancePCT;
    b.nonce += 1n;
    model.snapshot(b, b.transactionIndex);
    b.transactionIndex += 1n;
  },
};

// ------------------------------------------------------------------ the sequence

type Deployed = { eerc: Address; registrar: Address; usdc: Address };

async function runSequence(chain: ChainClients, d: Deployed, seed: bigint): Promise<number> {
  const r = rng(seed);
  const keys = new Map<Address, bigint>(USERS.map((u, i) => [u, 1000n + BigInt(i) * 7919n]));
  const pkOf = (u: Address) => mulBase(keys.get(u)!);
  const auditorPk = mulBase(4242n);
  const balances = new Map<Address, ModelBalance>(USERS.map((u) => [u, model.empty()]));
  // Every EGCT a user had since its last spend: the snapshots a proof may use.
  const seen = new Map<Address, EGCT[]>(USERS.map((u) => [u, []]));
  // Snapshots from before a user's last spend: no longer valid.
  const stale = new Map<Address, EGCT[]>(USERS.map((u) => [u, []]));
  let poolTokens = 0n;
  let tag = 1n;
  const pct = (): Words7 => [tag++, tag++, tag++, tag++, BASE8[0], BASE8[1], tag++];
  const send = async (from: Address, functionName: string, args: unknown[], abi: Abi = EncryptedERCAbi as Abi, address = d.eerc) => {
    const wallet = chain.walletFor(accounts.find((a) => a.address === from)!);
    const hash = await wallet.writeContract({ address, abi, functionName, args, gas: 3_000_000n } as never);
    return (await chain.publicClient.waitForTransactionReceipt({ hash })).status;
  };

  for (const [i, u] of [...USERS, AUDITOR].entries()) {
    const pk = u === AUDITOR ? auditorPk : pkOf(u);
    const signals = [pk[0], pk[1], BigInt(u), 31337n, 777n + BigInt(i)];
    expect(await send(u, "register", [{ proofPoints: NO_PROOF, publicSignals: signals }], RegistrarAbi as Abi, d.registrar)).toBe(
      "success",
    );
  }
  expect(await send(accounts[0]!.address, "setAuditorPublicKey", [AUDITOR])).toBe("success");
  for (const u of USERS) {
    await send(accounts[0]!.address, "mint", [u, 10n ** 12n], TestUSDCAbi as Abi, d.usdc);
    await send(u, "approve", [d.eerc, 10n ** 12n], TestUSDCAbi as Abi, d.usdc);
  }

  const expectChainMatches = async (step: string) => {
    for (const u of USERS) {
      const [eGCT, nonce, amountPCTs, balancePCT, transactionIndex] = (await chain.publicClient.readContract({
        address: d.eerc,
        abi: EncryptedERCAbi,
        functionName: "balanceOf",
        args: [u, 1n],
      })) as unknown as [
        { c1: { x: bigint; y: bigint }; c2: { x: bigint; y: bigint } },
        bigint,
        { pct: readonly bigint[]; index: bigint }[],
        readonly bigint[],
        bigint,
      ];
      const m = balances.get(u)!;
      const expected = m.eGCT
        ? [m.eGCT.c1, m.eGCT.c2]
        : [
            [0n, 0n],
            [0n, 0n],
          ];
      const label = `${step}, account ${u}`;
      expect(
        [
          [eGCT.c1.x, eGCT.c1.y],
          [eGCT.c2.x, eGCT.c2.y],
        ],
        label,
      ).toEqual(expected);
      expect({ nonce, transactionIndex, balancePCT: [...balancePCT] }, label).toEqual({
        nonce: m.nonce,
        transactionIndex: m.transactionIndex,
        balancePCT: m.balancePCT,
      });
      const asSet = amountPCTs.map((a) => [a.index, [...a.pct]] as const).sort((a, b) => (a[0] < b[0] ? -1 : 1));
      expect(asSet, label).toEqual([...m.pcts.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
      // The bounded read, made to read in pieces however short the queue (pages of 2 on this
      // project's contract, storage slots on the audited one), returns what balanceOf does.
      const pieces = await readBalance(chain.publicClient, { encryptedERC: d.eerc, user: u, tokenId: 1n, fastPathPCTs: 0n, pagePCTs: 2n });
      expect(pieces, label).toEqual(toBalanceView([eGCT, nonce, amountPCTs, balancePCT, transactionIndex]));
    }
  };

  const spendable = (u: Address) => {
    const b = balances.get(u)!;
    return seen.get(u)!.filter((e) => model.valid(b, e) !== undefined);
  };

  let spends = 0;
  for (let step = 1; step <= STEPS; step++) {
    const u = USERS[r.int(USERS.length)]!;
    const b = balances.get(u)!;
    const options = spendable(u);
    const kind =
      options.length === 0 ? "deposit" : (["deposit", "transfer", "transfer", "transfer", "withdraw", "stale"] as const)[r.int(6)]!;
    let what: string = kind;
    if (kind === "deposit") {
      const value = 1n + r.big(5_000_000n);
      const amountPCT = pct();
      expect(await send(u, "deposit", [value, d.usdc, amountPCT])).toBe("success");
      model.deposit(b, publicAmount(value, pkOf(u)), amountPCT);
      poolTokens += value;
      seen.get(u)!.push(b.eGCT!);
    } else if (kind === "stale") {
      // A spend proven against an EGCT that is no longer a valid snapshot changes nothing.
      const old = stale.get(u)!.at(-1) ?? { c1: mulBase(5n), c2: mulBase(6n) };
      expect(model.valid(b, old)).toBeUndefined();
      const signals = [...pkOf(u), old.c1[0], old.c1[1], old.c2[0], old.c2[1], ...Array(26).fill(0n)];
      const to = USERS[(USERS.indexOf(u) + 1) % USERS.length]!;
      signals.splice(10, 2, ...pkOf(to));
      signals.splice(23, 2, ...auditorPk);
      expect(await send(u, "transfer", [to, 1n, { proofPoints: NO_PROOF, publicSignals: signals }, pct()])).toBe("reverted");
    } else {
      // Any snapshot still valid at the current nonce, the latest or an older one with credits after it.
      const proven = options[r.int(options.length)]!;
      const newBalancePCT = pct();
      if (kind === "withdraw") {
        const value = 1n + r.big(poolTokens < 1_000_000n ? poolTokens : 1_000_000n);
        const signals = [value, ...pkOf(u), proven.c1[0], proven.c1[1], proven.c2[0], proven.c2[1], ...auditorPk, ...pct()];
        expect(await send(u, "withdraw", [1n, { proofPoints: NO_PROOF, publicSignals: signals }, newBalancePCT])).toBe("success");
        model.spend(b, proven, publicAmount(value, pkOf(u)), newBalancePCT);
        poolTokens -= value;
        what = `withdraw ${value}`;
      } else {
        const to = USERS[r.int(USERS.length)]!;
        const value = r.big(1_000_000n);
        const senderVTT = encryptElGamal(value, pkOf(u)).ct;
        const receiverVTT = encryptElGamal(value, pkOf(to)).ct;
        const receiverPCT = pct();
        const signals = [
          ...pkOf(u),
          proven.c1[0],
          proven.c1[1],
          proven.c2[0],
          proven.c2[1],
          senderVTT.c1[0],
          senderVTT.c1[1],
          senderVTT.c2[0],
          senderVTT.c2[1],
          ...pkOf(to),
          receiverVTT.c1[0],
          receiverVTT.c1[1],
          receiverVTT.c2[0],
          receiverVTT.c2[1],
          ...receiverPCT,
          ...auditorPk,
          ...pct(),
        ];
        expect(await send(u, "transfer", [to, 1n, { proofPoints: NO_PROOF, publicSignals: signals }, newBalancePCT])).toBe("success");
        model.spend(b, proven, senderVTT, newBalancePCT);
        model.credit(balances.get(to)!, receiverVTT, receiverPCT);
        seen.get(to)!.push(balances.get(to)!.eGCT!);
        what = `transfer ${u === to ? "to itself" : `to ${to}`}${proven === seen.get(u)!.at(-1) ? "" : " (against an older snapshot)"}`;
      }
      stale.get(u)!.push(...seen.get(u)!.filter((e) => model.valid(b, e) === undefined));
      seen.set(u, [b.eGCT!]);
      spends += 1;
    }
    await expectChainMatches(`step ${step}: ${what}`);
  }
  // The sequence must have exercised what it claims to.
  expect(spends).toBeGreaterThan(STEPS / 3);
  return spends;
}

async function deployOwn(chain: ChainClients): Promise<Deployed> {
  const deploy = async (name: string, args: unknown[] = []) => {
    const { abi, bytecode } = await loadArtifact(name);
    const hash = await chain.walletFor(accounts[0]!).deployContract({ abi: abi as Abi, bytecode, args } as never);
    return (await chain.publicClient.waitForTransactionReceipt({ hash })).contractAddress as Address;
  };
  const verifier = await deploy("FixedResultVerifier", [true]);
  const registrar = await deploy("Registrar", [verifier]);
  const eerc = await deploy("EncryptedERC", [
    {
      registrar,
      isConverter: true,
      name: "",
      symbol: "",
      decimals: 6,
      mintVerifier: verifier,
      withdrawVerifier: verifier,
      transferVerifier: verifier,
      burnVerifier: verifier,
    },
  ]);
  return { eerc, registrar, usdc: await deploy("TestUSDC") };
}

async function deployAudited(chain: ChainClients, dir: string): Promise<Deployed> {
  const { abi, bytecode } = await loadArtifact("FixedResultVerifier");
  const hash = await chain.walletFor(accounts[0]!).deployContract({ abi: abi as Abi, bytecode, args: [true] } as never);
  const verifier = (await chain.publicClient.waitForTransactionReceipt({ hash })).contractAddress as Address;
  const verifiers = Object.fromEntries(CIRCUIT_NAMES.map((n) => [n, verifier])) as Record<CircuitName, Address>;
  const core = await deployAuditedEerc({ chain, deployer: accounts[0]!, build: await buildAudited(dir, { log: () => {} }), verifiers });
  const usdc = await loadArtifact("TestUSDC");
  const h2 = await chain.walletFor(accounts[0]!).deployContract({ abi: usdc.abi as Abi, bytecode: usdc.bytecode } as never);
  return {
    eerc: core.encryptedERC,
    registrar: core.registrar,
    usdc: (await chain.publicClient.waitForTransactionReceipt({ hash: h2 })).contractAddress as Hex,
  };
}

const targets: [string, (chain: ChainClients) => Promise<Deployed>][] = [["this project's EncryptedERC", deployOwn]];
if (process.env.EERC_AUDITED_DIR)
  targets.push(["the audited EncryptedERC", (chain) => deployAudited(chain, process.env.EERC_AUDITED_DIR!)]);

describe.each(targets)("the documented balance model on %s", (_, deployTarget) => {
  let anvil: Anvil;
  let chain: ChainClients;
  beforeAll(async () => {
    anvil = await startAnvil();
    chain = await connectChain(anvil.rpcUrl);
  });
  afterAll(async () => {
    await anvil?.stop();
  });

  it(`predicts balanceOf after each of ${STEPS} random deposits, transfers, withdrawals and stale spends`, async () => {
    await runSequence(chain, await deployTarget(chain), 0x5eed_b5n);
  });
});
