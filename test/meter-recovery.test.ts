/**
 * No usage lost by the meter, on anvil: a meter whose spool was deleted refuses to start while its
 * server has batches on the UsageLedger, and goes on from an explicit `startSequence`; a batch
 * whose id is committed with other content is refused, stays pending and is never marked
 * submitted. The ledger's `batchHashOf` and the committed logs are the reference.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hex, PrivateKeyAccount } from "viem";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ProviderRegistryAbi } from "../abis/ProviderRegistryAbi.js";
import { UsageLedgerAbi } from "../abis/UsageLedgerAbi.js";
import { type Anvil, startAnvil } from "../src/chain/anvil.js";
import { type ChainClients, connectChain } from "../src/chain/clients.js";
import type { DeploymentManifest } from "../src/deployment/manifest.js";
import { Prover } from "../src/eerc/prover.js";
import {
  BatchIdConflictError,
  type BatchSubmitter,
  createBatchSubmitter,
  createMeter,
  type Meter,
  type MeterOptions,
  perCall,
  readSpool,
  SpoolBehindLedgerError,
  StartSequenceError,
  staticPricing,
} from "../src/meter/index.js";
import { batchIdOf, verifyBatchRecords } from "../src/usage/index.js";
import { accounts, connectClient as connectEerc, deployForTests } from "./indexer-helpers.js";

const OPERATOR = 0;
const PAYOUT = 2;
const PRICING = staticPricing({ weather: perCall(1_500n) });

let anvil: Anvil;
let chain: ChainClients;
let manifest: DeploymentManifest;
const prover = new Prover();
const dirs: string[] = [];
const meters: Meter[] = [];

const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "meter-recovery-"));
  dirs.push(d);
  return d;
};

function submitterOf(server: PrivateKeyAccount, log?: (line: string) => void): BatchSubmitter {
  const { providerRegistry: registry, usageLedger: ledger, registrar, encryptedERC: eerc } = manifest.contracts;
  return createBatchSubmitter({
    serverAccount: server,
    publicClient: chain.publicClient,
    ledger,
    registry,
    registrar,
    eerc,
    mode: { kind: "direct" },
    ...(log ? { log } : {}),
  });
}

/** A meter on `spoolDir` with one metered tool; `call()` runs it as the MCP SDK would. */
function meterOf(options: Partial<MeterOptions> & Pick<MeterOptions, "spoolDir" | "serverAddress">) {
  const meter = createMeter({ pricing: PRICING, batch: { maxAgeMs: 600_000 }, retry: { minMs: 50, maxMs: 200 }, ...options });
  meters.push(meter);
  let tool!: (args: unknown, extra: unknown) => Promise<unknown>;
  const mcpServer = { registerTool: (_name: string, _config: unknown, cb: typeof tool) => void (tool = cb) };
  const register = () =>
    meter.registerTool(mcpServer as never, { namespace: "weather", route: "getForecast", description: "forecast" }, async () => ({
      content: [{ type: "text" as const, text: "sunny" }],
    }));
  return { meter, register, call: () => tool({}, {}) };
}

const batchHashOf = (server: PrivateKeyAccount, sequence: number) =>
  chain.publicClient.readContract({
    address: manifest.contracts.usageLedger,
    abi: UsageLedgerAbi,
    functionName: "batchHashOf",
    args: [server.address, batchIdOf(server.address, sequence)],
  });

/** The Merkle root the ledger's log holds for batch `sequence` of `server`. */
async function committedRoot(server: PrivateKeyAccount, sequence: number): Promise<Hex> {
  const logs = await chain.publicClient.getContractEvents({
    address: manifest.contracts.usageLedger,
    abi: UsageLedgerAbi,
    eventName: "UsageCommitted",
    args: { server: server.address, batchId: batchIdOf(server.address, sequence) },
    fromBlock: 0n,
    strict: true,
  });
  expect(logs).toHaveLength(1);
  return logs[0]!.args.merkleRoot;
}

const submittedSequences = (meter: Meter) => readSpool(meter.spoolPath).lines.flatMap((l) => (l.type === "submitted" ? [l.sequence] : []));

beforeAll(async () => {
  anvil = await startAnvil();
  chain = await connectChain(anvil.rpcUrl);
  manifest = (await deployForTests({ rpcUrl: anvil.rpcUrl, prover })) as DeploymentManifest;
  const send = async (functionName: string, address: Hex, abi: readonly unknown[], args: readonly unknown[]) => {
    const hash = await chain.walletFor(accounts[OPERATOR]!).writeContract({ address, abi, functionName, args } as never);
    expect((await chain.publicClient.waitForTransactionReceipt({ hash })).status, functionName).toBe("success");
  };
  // Lines are encrypted to the operator's and the payout account's eERC keys.
  await (await connectEerc(chain, manifest, prover, OPERATOR)).register();
  await (await connectEerc(chain, manifest, prover, PAYOUT)).register();
  await send("registerProvider", manifest.contracts.providerRegistry, ProviderRegistryAbi, [
    "weather",
    accounts[PAYOUT]!.address,
    perCall(1_500n),
  ]);
  for (const server of [accounts[6]!, accounts[7]!]) {
    await send("setServer", manifest.contracts.usageLedger, UsageLedgerAbi, [server.address, true]);
  }
});

afterAll(async () => {
  for (const m of meters) await m.close();
  await prover.close();
  await anvil?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("a spool lost mid-life", () => {
  const server = accounts[6]!;

  test("the restarted meter refuses to start, naming the last committed batch; with startSequence its batches reach the chain", async () => {
    const spoolDir = tempDir();
    const first = meterOf({ spoolDir, serverAddress: server.address, submitter: submitterOf(server) });
    await first.meter.recover();
    first.register();
    await first.call();
    await first.call();
    await first.meter.flush();
    await first.call();
    await first.meter.flush();
    await first.meter.close();
    expect(submittedSequences(first.meter)).toEqual([1, 2]);
    rmSync(first.meter.spoolPath);

    // The spool is gone: batch 1's id is taken on chain, so the meter refuses before recording anything.
    const lost = meterOf({ spoolDir, serverAddress: server.address, submitter: submitterOf(server) });
    const refusal = await lost.meter.recover().catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(SpoolBehindLedgerError);
    expect(refusal).toMatchObject({ code: "SPOOL_BEHIND_LEDGER", server: server.address, nextSequence: 1, lastCommitted: 2 });
    expect((refusal as Error).message).toMatch(
      new RegExp(`server ${server.address} already has batches committed on chain up to sequence 2.*Restore the spool.*startSequence: 3`),
    );
    expect(readSpool(first.meter.spoolPath).lines).toEqual([]);

    // The operator's fix: start after the last committed batch. The spool lock was released by the refusal.
    const resumed = meterOf({ spoolDir, serverAddress: server.address, submitter: submitterOf(server), startSequence: 3 });
    expect(await resumed.meter.recover()).toMatchObject({ closedBatches: 0, nextSequence: 3 });
    resumed.register();
    await resumed.call();
    await resumed.call();
    const records = [...resumed.meter.openRecords()];
    await resumed.meter.flush();
    expect(submittedSequences(resumed.meter)).toEqual([3]);
    expect(resumed.meter.pendingBatches()).toEqual([]);
    expect(verifyBatchRecords(records, await committedRoot(server, 3))).toBe(true);
    await resumed.meter.close();

    // The spool now numbers from 3: a restart without the option goes on at 4; one beyond the spool is refused.
    const again = meterOf({ spoolDir, serverAddress: server.address, submitter: submitterOf(server) });
    expect(await again.meter.recover()).toMatchObject({ closedBatches: 1, unsubmitted: [], nextSequence: 4 });
    await again.meter.close();
    const ahead = meterOf({ spoolDir, serverAddress: server.address, submitter: submitterOf(server), startSequence: 9 });
    await expect(ahead.meter.recover()).rejects.toThrow(StartSequenceError);
    // A startSequence on a committed id is refused like the lost spool.
    const onCommitted = meterOf({ spoolDir: tempDir(), serverAddress: server.address, submitter: submitterOf(server), startSequence: 2 });
    await expect(onCommitted.meter.recover()).rejects.toMatchObject({ code: "SPOOL_BEHIND_LEDGER", nextSequence: 2, lastCommitted: 3 });
  });
});

describe("a batch id committed with other content", () => {
  const server = accounts[7]!;

  test("is refused loudly: the batch stays pending, nothing is marked submitted, the chain keeps the first batch", async () => {
    const first = meterOf({ spoolDir: tempDir(), serverAddress: server.address, submitter: submitterOf(server) });
    await first.meter.recover();
    first.register();
    await first.call();
    const committed = [...first.meter.openRecords()];
    await first.meter.flush();
    await first.meter.close();
    const stored = await batchHashOf(server, 1);
    expect(verifyBatchRecords(committed, await committedRoot(server, 1))).toBe(true);

    // A second spool for the same server, wired with onBatch alone (no start check): its batch 1 holds other calls.
    const logged: string[] = [];
    const errors: unknown[] = [];
    const submitter = submitterOf(server, (line) => logged.push(line));
    const other = meterOf({
      spoolDir: tempDir(),
      serverAddress: server.address,
      onBatch: submitter.onBatch,
      onSubmitError: (err) => errors.push(err),
    });
    await other.meter.recover();
    other.register();
    await other.call();
    await other.call();
    await other.meter.flush();

    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(BatchIdConflictError);
    expect(errors[0]).toMatchObject({
      code: "BATCH_ID_CONFLICT",
      server: server.address,
      sequence: 1,
      batchId: batchIdOf(server.address, 1),
    });
    expect(other.meter.submissionConflict).toBe(errors[0]);
    expect(logged.join("\n")).toMatch(/usage batch refused: batch 1 .* already committed on chain with other content/);
    expect(submittedSequences(other.meter)).toEqual([]);
    expect(other.meter.pendingBatches().map((b) => b.sequence)).toEqual([1]);
    expect(other.meter.metrics()).toMatch(/backendshield_meter_batch_id_conflict 1/);
    // Delivery has stopped: a later flush sends nothing, and the chain still holds the first batch.
    await other.meter.flush();
    expect(errors).toHaveLength(1);
    expect(await batchHashOf(server, 1)).toBe(stored);
    expect(await batchHashOf(server, 2)).toBe(`0x${"0".repeat(64)}`);
  });
});
