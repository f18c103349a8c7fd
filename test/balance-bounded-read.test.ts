/**
 * Bounded balance reads (docs/security.md, finding 4): an account whose pending queue holds
 * thousands of amount PCTs, more than one `balanceOf` eth_call can return under the node's gas
 * cap, still reads its balance, withdraws it, and still pays as a payer, because every reader goes
 * through `readBalance` (src/eerc/balance-read.ts).
 *
 * The queues are built quickly: the credits are transfers from a "spammer" account whose proofs
 * are not checked (every verifier is the test-only FixedResultVerifier, and only in this test's
 * deployment), with real ciphertexts made by the SDK. The spammer's transfers subtract the
 * identity EGCT, so its balance, and with it the snapshot every transfer is proven against, stays
 * the same; each credits 1 micro-USDC. The spends under test (the payer's transfer, the provider's
 * withdrawal) are proved with the real circuits. With EERC_AUDITED_DIR set the same runs on the
 * audited contracts, whose long queues are read from storage slots; there the queue is shorter,
 * since the audited spend deletes its PCTs one by one and a spend of 3,000 would not fit a block.
 */
import { type Abi, type Address, encodeFunctionData, type Hex, keccak256, stringToHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EncryptedERCAbi } from "../abis/EncryptedERCAbi.js";
import { TestUSDCAbi } from "../abis/TestUSDCAbi.js";
import { buildAudited, deployAuditedEerc } from "../scripts/interop/build-audited.js";
import { loadArtifact } from "../src/build/contracts.js";
import { type Anvil, startAnvil } from "../src/chain/anvil.js";
import { type ChainClients, connectChain } from "../src/chain/clients.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { CIRCUIT_NAMES, type CircuitName } from "../src/eerc/artifacts.js";
import { decryptBalance } from "../src/eerc/balance.js";
import { FAST_PATH_PCTS, hasPagedReads, PAGE_PCTS, readBalance } from "../src/eerc/balance-read.js";
import { EercClient } from "../src/eerc/client.js";
import type { Point } from "../src/eerc/curve.js";
import { encryptElGamal } from "../src/eerc/elgamal.js";
import { encryptPCT } from "../src/eerc/pct.js";
import { Prover } from "../src/eerc/prover.js";
import { balanceFromChain } from "../src/history/chain.js";
import { payFromPayer } from "../src/payout/pipeline.js";
import { NO_PROOF } from "./contract-helpers.js";

const accounts = ANVIL_KEYS.map((k) => privateKeyToAccount(k));
const [OWNER, PROVIDER, PAYER, SPAMMER, AUDITOR] = [0, 1, 2, 3, 9].map((i) => accounts[i]!);
/** Distinct ciphertexts per receiver; the queue repeats them. */
const POOL = 32;
const PAID = 5_000_000n;

type Deployed = { eerc: Address; registrar: Address; usdc: Address };

async function deployContract(chain: ChainClients, name: string, args: unknown[] = []): Promise<Address> {
  const { abi, bytecode } = await loadArtifact(name);
  const hash = await chain.walletFor(OWNER!).deployContract({ abi: abi as Abi, bytecode, args } as never);
  return (await chain.publicClient.waitForTransactionReceipt({ hash })).contractAddress as Address;
}

/** This project's EncryptedERC, every verifier the accept-all test verifier. */
async function deployOwn(chain: ChainClients): Promise<Deployed> {
  const verifier = await deployContract(chain, "FixedResultVerifier", [true]);
  const registrar = await deployContract(chain, "Registrar", [verifier]);
  const eerc = await deployContract(chain, "EncryptedERC", [
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
  return { eerc, registrar, usdc: await deployContract(chain, "TestUSDC") };
}

async function deployAudited(chain: ChainClients, dir: string): Promise<Deployed> {
  const verifier = await deployContract(chain, "FixedResultVerifier", [true]);
  const verifiers = Object.fromEntries(CIRCUIT_NAMES.map((n) => [n, verifier])) as Record<CircuitName, Address>;
  const core = await deployAuditedEerc({ chain, deployer: OWNER!, build: await buildAudited(dir, { log: () => {} }), verifiers });
  return { eerc: core.encryptedERC, registrar: core.registrar, usdc: await deployContract(chain, "TestUSDC") };
}

async function rpc(url: string, body: unknown): Promise<unknown> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return res.json();
}

async function call(url: string, method: string, params: unknown[] = []): Promise<unknown> {
  const out = (await rpc(url, { jsonrpc: "2.0", id: 1, method, params })) as { result?: unknown; error?: { message: string } };
  if (out.error) throw new Error(`${method}: ${out.error.message}`);
  return out.result;
}

/**
 * `count` credits of 1 to `to`, each a transfer from `spammer` with an unchecked proof and real
 * ciphertexts: sent in JSON-RPC batches with automine off, then mined until the pool is empty.
 */
async function fillQueue(args: {
  chain: ChainClients;
  rpcUrl: string;
  eerc: Address;
  tokenId: bigint;
  spammer: EercClient;
  to: Address;
  toPk: Point;
  auditorPk: Point;
  count: number;
}): Promise<void> {
  const { chain, rpcUrl, eerc, tokenId, spammer } = args;
  const [g] = await chain.publicClient.readContract({
    address: eerc,
    abi: EncryptedERCAbi,
    functionName: "balances",
    args: [spammer.address, tokenId],
  });
  const calldata: Hex[] = Array.from({ length: POOL }, () => {
    const vtt = encryptElGamal(1n, args.toPk).ct;
    const signals = [
      ...spammer.publicKey,
      g.c1.x,
      g.c1.y,
      g.c2.x,
      g.c2.y,
      // The sender VTT is the identity EGCT: the spammer's balance, and its snapshot, never change.
      0n,
      1n,
      0n,
      1n,
      ...args.toPk,
      ...vtt.c1,
      ...vtt.c2,
      ...encryptPCT(1n, args.toPk).pct,
      ...args.auditorPk,
      ...encryptPCT(1n, args.auditorPk).pct,
    ];
    return encodeFunctionData({
      abi: EncryptedERCAbi,
      functionName: "transfer",
      args: [args.to, tokenId, { proofPoints: NO_PROOF, publicSignals: signals as never }, [0n, 0n, 0n, 0n, 0n, 0n, 0n]],
    });
  });
  const gas = ((await chain.publicClient.estimateGas({ account: spammer.address, to: eerc, data: calldata[0]! })) * 13n) / 10n;
  let nonce = await chain.publicClient.getTransactionCount({ address: spammer.address });
  await call(rpcUrl, "evm_setAutomine", [false]);
  try {
    for (let sent = 0; sent < args.count; ) {
      const n = Math.min(500, args.count - sent);
      const batch = Array.from({ length: n }, (_, i) => ({
        jsonrpc: "2.0",
        id: i,
        method: "eth_sendTransaction",
        params: [
          {
            from: spammer.address,
            to: eerc,
            data: calldata[(sent + i) % POOL],
            gas: `0x${gas.toString(16)}`,
            nonce: `0x${(nonce + i).toString(16)}`,
          },
        ],
      }));
      const answers = (await rpc(rpcUrl, batch)) as { error?: { message: string } }[];
      const failed = answers.find((a) => a.error);
      if (failed) throw new Error(`eth_sendTransaction: ${failed.error!.message}`);
      sent += n;
      nonce += n;
      for (;;) {
        const status = (await call(rpcUrl, "txpool_status")) as { pending: Hex };
        if (BigInt(status.pending) === 0n) break;
        await call(rpcUrl, "anvil_mine", ["0x10"]);
      }
    }
  } finally {
    await call(rpcUrl, "evm_setAutomine", [true]);
  }
}

const targets: [string, number, (chain: ChainClients) => Promise<Deployed>][] = [["this project's EncryptedERC", 3000, deployOwn]];
if (process.env.EERC_AUDITED_DIR)
  targets.push(["the audited EncryptedERC", 420, (chain) => deployAudited(chain, process.env.EERC_AUDITED_DIR!)]);

describe.each(targets)("a pending queue too long for one balanceOf, on %s", (label, queue, deployTarget) => {
  let anvil: Anvil;
  let chain: ChainClients;
  let deployed: Deployed;
  let provider: EercClient, payer: EercClient, spammer: EercClient, auditor: EercClient;
  let tokenId: bigint;
  const prover = new Prover();
  const started = Date.now();

  beforeAll(async () => {
    anvil = await startAnvil();
    chain = await connectChain(anvil.rpcUrl);
    deployed = await deployTarget(chain);
    const client = (i: (typeof accounts)[number]) =>
      EercClient.connect({
        publicClient: chain.publicClient,
        wallet: chain.walletFor(i),
        contracts: { encryptedERC: deployed.eerc, registrar: deployed.registrar },
        prover,
      });
    [provider, payer, spammer, auditor] = await Promise.all([client(PROVIDER!), client(PAYER!), client(SPAMMER!), client(AUDITOR!)]);
    for (const c of [provider, payer, spammer, auditor]) await c.register();
    const owner = chain.walletFor(OWNER!);
    const wait = (hash: Hex) => chain.publicClient.waitForTransactionReceipt({ hash });
    await wait(
      await owner.writeContract({
        address: deployed.eerc,
        abi: EncryptedERCAbi,
        functionName: "setAuditorPublicKey",
        args: [auditor.address],
      }),
    );
    for (const [c, amount] of [
      [payer, 10_000_000n],
      [spammer, 1_000_000n],
    ] as const) {
      await wait(
        await owner.writeContract({ address: deployed.usdc, abi: TestUSDCAbi, functionName: "mint", args: [c.address, amount] } as never),
      );
      await c.deposit({ token: deployed.usdc, amount });
    }
    tokenId = await payer.tokenId(deployed.usdc);
    const auditorPk = await payer.auditorPublicKey();
    const t = Date.now();
    for (const c of [provider, payer]) {
      await fillQueue({
        chain,
        rpcUrl: anvil.rpcUrl,
        eerc: deployed.eerc,
        tokenId,
        spammer,
        to: c.address,
        toPk: c.publicKey,
        auditorPk,
        count: queue,
      });
    }
    console.log(`${label}: 2 queues of ${queue} pending PCTs built in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  });

  afterAll(async () => {
    console.log(`${label}: ${((Date.now() - started) / 1000).toFixed(1)} s in all`);
    await anvil?.stop();
  });

  it("balanceOf no longer fits one eth_call; the bounded read returns the whole balance, and it decrypts", async () => {
    const whole = chain.publicClient.readContract({
      address: deployed.eerc,
      abi: EncryptedERCAbi,
      functionName: "balanceOf",
      args: [provider.address, tokenId],
    });
    const paged = await hasPagedReads(chain.publicClient, deployed.eerc);
    expect(paged).toBe(label.startsWith("this project"));
    if (queue >= 2000) await expect(whole).rejects.toThrow();
    else await whole;

    const t = Date.now();
    const view = await readBalance(chain.publicClient, { encryptedERC: deployed.eerc, user: provider.address, tokenId });
    const readMs = Date.now() - t;
    expect(view.amountPCTs).toHaveLength(queue);
    expect(new Set(view.amountPCTs.map((p) => p.index)).size).toBe(queue);
    const t2 = Date.now();
    expect(decryptBalance(view, provider.exportPrivateKey())).toBe(BigInt(queue));
    console.log(`${label}: bounded read of ${queue} pending PCTs ${readMs} ms, decryption ${Date.now() - t2} ms`);

    if (paged) {
      const gasOf = (functionName: "balanceHeader" | "pendingPCTs" | "balanceOf", args: readonly unknown[]) =>
        chain.publicClient.estimateContractGas({ address: deployed.eerc, abi: EncryptedERCAbi, functionName, args } as never);
      const header = await gasOf("balanceHeader", [provider.address, tokenId]);
      const page = await gasOf("pendingPCTs", [provider.address, tokenId, 0n, PAGE_PCTS]);
      // balanceOf of an account whose queue is just at the fast path's limit, for comparison.
      const fast = await gasOf("balanceOf", [auditor.address, tokenId]);
      console.log(
        `${label}: gas per eth_call: balanceHeader ${header}, pendingPCTs page of ${PAGE_PCTS} ${page} (fast path at most ${FAST_PATH_PCTS} PCTs); balanceOf of an empty queue ${fast}`,
      );
      expect(page).toBeLessThan(10_000_000n);
    }
  });

  it("a payer with a long queue still pays through the payout pipeline", async () => {
    const before = await payer.balance(tokenId);
    expect(before).toBe(10_000_000n + BigInt(queue));
    const outcome = await payFromPayer({
      payer,
      tokenId,
      depth: 1,
      transfers: [{ seq: 1, providerId: keccak256(stringToHex("provider")), to: provider.address, amount: PAID, pct: {} }],
    });
    expect(outcome.sent).toHaveLength(1);
    expect(outcome.deferred).toHaveLength(0);
    expect(await payer.balance(tokenId)).toBe(before - PAID);
    expect((await payer.balanceView(tokenId)).amountPCTs).toHaveLength(0);
  });

  it("the provider reads its balance (SDK and RPC-only) and withdraws all of it", async () => {
    const total = BigInt(queue) + PAID;
    expect(await provider.balance(tokenId)).toBe(total);
    const fromChain = await balanceFromChain({
      rpcUrl: anvil.rpcUrl,
      publicClient: chain.publicClient,
      encryptedERC: deployed.eerc,
      registrar: deployed.registrar,
      account: provider.address,
      tokenId,
      sk: provider.exportPrivateKey(),
    });
    expect(fromChain.balanceMicro).toBe(total);
    expect(fromChain.pendingCredits).toBe(queue + 1);

    const held = () =>
      chain.publicClient.readContract({ address: deployed.usdc, abi: TestUSDCAbi, functionName: "balanceOf", args: [provider.address] });
    const usdcBefore = await held();
    const receipt = await provider.withdraw({ amount: total, tokenId });
    console.log(`${label}: withdrawal against a queue of ${queue + 1} PCTs used ${receipt.gasUsed} gas`);
    expect((await held()) - usdcBefore).toBe(total);
    expect(await provider.balance(tokenId)).toBe(0n);
  });
});
