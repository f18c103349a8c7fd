/**
 * The batch submitter against a fake chain client and a fake relay API: batch building, the
 * direct and relay paths, "already committed" as success only for the same batch, and a batch id
 * committed with other content as a BatchIdConflictError. The real chain and API are in
 * test/usage-e2e.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Address,
  BaseError,
  ContractFunctionRevertedError,
  encodeErrorResult,
  getAddress,
  type Hex,
  keccak256,
  toHex,
  verifyTypedData,
  zeroHash,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { UsageLedgerAbi } from "../abis/UsageLedgerAbi.js";
import { checkSubmission } from "../src/api/submit-checks.js";
import { workerChecker } from "../src/api/workers.js";
import { type Point, randomScalar } from "../src/eerc/curve.js";
import { publicKeyOf } from "../src/eerc/keys.js";
import { ApiInputError } from "../src/http/input.js";
import {
  BatchIdConflictError,
  BatchSubmitError,
  type ClosedBatch,
  createBatchSubmitter,
  createMeter,
  isBatchAlreadyCommitted,
  readSpool,
  staticPricing,
  submitRequestBody,
} from "../src/meter/index.js";
import {
  batchHash,
  batchIdOf,
  batchTypedData,
  decryptLinesFor,
  perCall,
  providerIdOf,
  type UsageBatch,
  verifyBatchRecords,
} from "../src/usage/index.js";
import type { CallRecord } from "../src/usage/record.js";

const server = privateKeyToAccount("0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a");
const operator = getAddress("0x00000000000000000000000000000000000000a1");
const CONTRACTS = {
  ledger: getAddress("0x00000000000000000000000000000000000000c1"),
  registry: getAddress("0x00000000000000000000000000000000000000c2"),
  registrar: getAddress("0x00000000000000000000000000000000000000c3"),
  eerc: getAddress("0x00000000000000000000000000000000000000c4"),
};
const CHAIN_ID = 31337;

type Party = { address: Address; sk: bigint; pk: Point };
const party = (n: number): Party => {
  const sk = randomScalar();
  return { address: getAddress(`0x${n.toString(16).padStart(40, "0")}`), sk, pk: publicKeyOf(sk) };
};
const weather = party(0xb1);
const news = party(0xb2);
const op = { ...party(0xa1), address: operator };
const auditor = party(0xa9);
const stranger = party(0xee);
const payout: Record<string, Party> = { [providerIdOf("weather")]: weather, [providerIdOf("news")]: news };

const revert = (errorName: string, args: readonly unknown[]) =>
  new BaseError("execution reverted", {
    cause: new ContractFunctionRevertedError({
      abi: UsageLedgerAbi,
      functionName: "commit",
      data: encodeErrorResult({ abi: UsageLedgerAbi, errorName, args } as never),
    }),
  });

/** Just enough of a viem PublicClient and WalletClient for the submitter, over an in-memory ledger. */
function fakeChain(options: { onSimulate?: (batch: UsageBatch) => Error | undefined; receiptStatus?: "success" | "reverted" } = {}) {
  const committed = new Map<Hex, UsageBatch>();
  const calls: string[] = [];
  const sent: UsageBatch[] = [];
  const publicClient = {
    chain: { id: CHAIN_ID },
    async readContract({ functionName, args }: { functionName: string; args?: readonly unknown[] }) {
      calls.push(functionName);
      switch (functionName) {
        case "operator":
          return operator;
        case "batchHashOf": {
          const batch = committed.get(args![1] as Hex);
          return batch ? batchHash(batch) : zeroHash;
        }
        case "auditorPublicKey":
          return auditor.pk;
        case "getProvider": {
          const p = payout[args![0] as Hex];
          if (!p) throw revert("UnknownProvider", [args![0]]);
          return { namespace: "?", payoutAccount: p.address, active: true, pricing: {} };
        }
        case "getUserPublicKey": {
          const who = [weather, news, op].find((p) => p.address === args![0]);
          return who ? who.pk : [0n, 0n];
        }
        default:
          throw new Error(`unexpected read ${functionName}`);
      }
    },
    /** The ledger's `UsageCommitted` logs of one (server, batchId). */
    async getContractEvents({ args }: { args: { server: Address; batchId: Hex } }) {
      calls.push("getContractEvents");
      const batch = committed.get(args.batchId);
      return batch && batch.server === args.server ? [{ args: batch }] : [];
    },
    async simulateContract({ args }: { args: readonly unknown[] }) {
      calls.push("simulate");
      const batch = args[0] as UsageBatch;
      const error = options.onSimulate?.(batch);
      if (error) throw error;
      return { request: { batch } };
    },
    async waitForTransactionReceipt({ hash }: { hash: Hex }) {
      return { status: options.receiptStatus ?? "success", transactionHash: hash };
    },
  };
  const walletClient = {
    async writeContract({ batch }: { batch: UsageBatch }) {
      sent.push(batch);
      if ((options.receiptStatus ?? "success") === "success") committed.set(batch.batchId, batch);
      return keccak256(toHex(`tx ${batch.batchId}`));
    },
  };
  return { publicClient, walletClient, committed, calls, sent };
}

let counter = 0;
const record = (provider: string, overrides: Partial<CallRecord> = {}): CallRecord => {
  counter++;
  return {
    eventId: `event-${counter}`,
    provider,
    tool: "lookup",
    startedAt: 1_767_225_600_000 + counter,
    endedAt: 1_767_225_600_000 + counter + 3,
    durationMs: 3,
    outcome: "ok",
    requestBytes: 40,
    responseBytes: 300,
    billable: true,
    priceMicro: provider === "weather" ? 1_500n : 0n,
    ...overrides,
  };
};

function closed(sequence: number, records: CallRecord[]): ClosedBatch {
  return {
    server: server.address,
    sequence,
    batchId: batchIdOf(server.address, sequence),
    period: 202601,
    periodStart: Math.min(...records.map((r) => r.startedAt)),
    periodEnd: Math.max(...records.map((r) => r.endedAt)),
    closedAt: 1_767_225_700_000,
    records,
  };
}

const submitterFor = (
  chain: ReturnType<typeof fakeChain>,
  mode: { kind: "direct" } | { kind: "relay"; apiUrl: string } = { kind: "direct" },
  extra = {},
) =>
  createBatchSubmitter({
    serverAccount: server,
    publicClient: chain.publicClient as never,
    walletClient: chain.walletClient as never,
    ...CONTRACTS,
    mode,
    ...extra,
  });

describe("batch submitter, direct", () => {
  test("builds the batch from the records and the keys on chain, commits it, returns the transaction", async () => {
    const chain = fakeChain();
    const records = [record("weather"), record("weather", { outcome: "tool_error", billable: false, priceMicro: 0n }), record("news")];
    const result = await submitterFor(chain).submit(closed(1, records));
    expect(result).toMatchObject({ batchId: batchIdOf(server.address, 1), alreadyCommitted: false });
    expect(result.txHash).toMatch(/^0x[0-9a-f]{64}$/);
    const [batch] = chain.sent;
    expect(batch.server).toBe(server.address);
    expect([batch.periodStart, batch.periodEnd]).toEqual([BigInt(records[0].startedAt), BigInt(records[2].endedAt)]);
    expect(verifyBatchRecords(records, batch.merkleRoot)).toBe(true);
    expect(decryptLinesFor(batch.encryptedLines, weather.sk, "provider")).toEqual([
      { providerId: providerIdOf("weather"), calls: 2n, billableCalls: 1n, amountMicro: 1_500n, revenueMicro: 0n },
    ]);
    expect(decryptLinesFor(batch.encryptedLines, news.sk, "provider")).toEqual([
      { providerId: providerIdOf("news"), calls: 1n, billableCalls: 1n, amountMicro: 0n, revenueMicro: 0n },
    ]);
    // The operator's key is the one registered for the ledger's operator (not its owner); the auditor's the eERC's.
    expect(decryptLinesFor(batch.encryptedLines, op.sk, "operator")).toHaveLength(2);
    expect(decryptLinesFor(batch.encryptedLines, auditor.sk, "auditor")).toHaveLength(2);
    expect(decryptLinesFor(batch.encryptedLines, stranger.sk, "provider")).toEqual([]);
    expect(chain.calls).toContain("operator");
  });

  test("an operator key given up front is used without reading the ledger's operator", async () => {
    const chain = fakeChain();
    const other = party(0xa2);
    await submitterFor(chain, { kind: "direct" }, { operatorPk: other.pk }).submit(closed(1, [record("news")]));
    expect(chain.calls).not.toContain("operator");
    expect(decryptLinesFor(chain.sent[0].encryptedLines, other.sk, "operator")).toHaveLength(1);
    expect(decryptLinesFor(chain.sent[0].encryptedLines, op.sk, "operator")).toEqual([]);
  });

  test("a batch already on chain is success without building or sending anything", async () => {
    const chain = fakeChain();
    const submitter = submitterFor(chain);
    const batch = closed(1, [record("weather")]);
    await submitter.submit(batch);
    chain.calls.length = 0;
    expect(await submitter.submit(batch)).toEqual({ batchId: batch.batchId, txHash: null, alreadyCommitted: true });
    expect(chain.calls).toEqual(["batchHashOf"]);
    expect(chain.sent).toHaveLength(1);
  });

  test("a batch rebuilt after a restart matches the committed one by Merkle root and period, not by its encryption", async () => {
    const chain = fakeChain();
    const batch = closed(1, [record("weather"), record("news")]);
    await submitterFor(chain).submit(batch);
    chain.calls.length = 0;
    // A fresh submitter (a restarted process) would encrypt the lines afresh: the committed log decides.
    expect(await submitterFor(chain).submit(batch)).toEqual({ batchId: batch.batchId, txHash: null, alreadyCommitted: true });
    expect(chain.calls).toEqual(["batchHashOf", "getContractEvents"]);
    expect(chain.sent).toHaveLength(1);
  });

  test("a batch id committed with other content is a BatchIdConflictError: nothing sent, never success", async () => {
    const chain = fakeChain();
    const before = closed(1, [record("weather")]);
    await submitterFor(chain).submit(before);
    // The spool was lost: the restarted meter numbers other records 1 again.
    const after = closed(1, [record("news")]);
    const lines: string[] = [];
    const error = await submitterFor(chain, { kind: "direct" }, { log: (line: string) => lines.push(line) })
      .submit(after)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BatchIdConflictError);
    expect(error).toMatchObject({
      code: "BATCH_ID_CONFLICT",
      server: server.address,
      sequence: 1,
      batchId: after.batchId,
      committed: { merkleRoot: chain.sent[0].merkleRoot },
    });
    expect((error as Error).message).toMatch(/already committed on chain with other content.*startSequence/);
    expect(chain.sent).toHaveLength(1);
    expect(lines.join("\n")).toMatch(/usage batch refused: .*other content/);

    // Same records, another period: still not the committed batch.
    const shifted = { ...before, periodEnd: before.periodEnd + 1 };
    await expect(submitterFor(chain).submit(shifted)).rejects.toThrow(BatchIdConflictError);
    // A stored hash no log matches cannot be checked: refused as well.
    const unverifiable = fakeChain();
    unverifiable.committed.set(before.batchId, chain.sent[0]);
    const noLogs = { ...unverifiable.publicClient, getContractEvents: async () => [] };
    await expect(submitterFor({ ...unverifiable, publicClient: noLogs } as never).submit(before)).rejects.toMatchObject({
      code: "BATCH_ID_CONFLICT",
      committed: null,
    });
  });

  test("BatchAlreadyCommitted from the node is success only for this batch; any other revert is an error", async () => {
    expect(isBatchAlreadyCommitted(revert("BatchAlreadyCommitted", [server.address, `0x${"11".repeat(32)}`]))).toBe(true);
    expect(isBatchAlreadyCommitted(revert("UnauthorisedServer", [server.address]))).toBe(false);
    expect(isBatchAlreadyCommitted(new Error("BatchAlreadyCommitted"))).toBe(false);

    // Committed by another transaction of the same batch since the submitter looked.
    const raced = fakeChain({
      onSimulate: (b) => {
        raced.committed.set(b.batchId, b);
        return revert("BatchAlreadyCommitted", [b.server, b.batchId]);
      },
    });
    expect(await submitterFor(raced).submit(closed(1, [record("news")]))).toMatchObject({ txHash: null, alreadyCommitted: true });
    expect(raced.sent).toEqual([]);
    // Committed with other records under the same id.
    const taken = fakeChain({
      onSimulate: (b) => {
        taken.committed.set(b.batchId, { ...b, merkleRoot: `0x${"55".repeat(32)}` });
        return revert("BatchAlreadyCommitted", [b.server, b.batchId]);
      },
    });
    await expect(submitterFor(taken).submit(closed(1, [record("news")]))).rejects.toThrow(BatchIdConflictError);

    const refused = fakeChain({ onSimulate: (b) => revert("UnauthorisedServer", [b.server]) });
    const error = await submitterFor(refused)
      .submit(closed(1, [record("news")]))
      .catch((e: unknown) => e);
    const reverted = error instanceof BaseError ? error.walk((e) => e instanceof ContractFunctionRevertedError) : null;
    expect((reverted as ContractFunctionRevertedError | null)?.data?.errorName).toBe("UnauthorisedServer");
    expect(refused.sent).toEqual([]);
  });

  test("a transaction reverted on chain is success only if the batch is committed after all", async () => {
    const chain = fakeChain({ receiptStatus: "reverted" });
    const batch = closed(1, [record("news")]);
    await expect(submitterFor(chain).submit(batch)).rejects.toThrow(BatchSubmitError);
    // Committed by another transaction of the same batch (its lines encrypted otherwise).
    chain.committed.set(batch.batchId, { ...chain.sent[0], encryptedLines: "0x1234" });
    chain.calls.length = 0;
    expect(await submitterFor(chain).submit(batch)).toMatchObject({ alreadyCommitted: true, txHash: null });
  });

  test("refuses a batch of another server, a provider the registry does not know, and a wrong batch id", async () => {
    const chain = fakeChain();
    const submitter = submitterFor(chain);
    await expect(submitter.submit({ ...closed(1, [record("news")]), server: operator })).rejects.toThrow(/handed to the submitter of/);
    await expect(submitter.submit(closed(1, [record("unlisted")]))).rejects.toThrow(/UnknownProvider/);
    await expect(submitter.submit({ ...closed(1, [record("news")]), batchId: batchIdOf(server.address, 2) })).rejects.toThrow(/expected/);
    expect(chain.sent).toEqual([]);
  });

  test("as a meter's onBatch: closed batches are committed and the spool records their transactions", async () => {
    const chain = fakeChain();
    const spoolDir = mkdtempSync(join(tmpdir(), "submit-"));
    try {
      const submitter = submitterFor(chain);
      const meter = createMeter({
        spoolDir,
        serverAddress: server.address,
        pricing: staticPricing({ weather: perCall(1_500n) }),
        batch: { maxRecords: 1_000, maxAgeMs: 60_000 },
        onBatch: submitter.onBatch,
      });
      await meter.recover();
      // The metered handler as the MCP SDK would call it (the real transport is in the e2e test).
      let tool!: (args: unknown, extra: unknown) => Promise<unknown>;
      const mcpServer = { registerTool: (_name: string, _config: unknown, cb: typeof tool) => void (tool = cb) };
      meter.registerTool(mcpServer as never, { namespace: "weather", route: "getForecast", description: "forecast" }, async () => ({
        content: [{ type: "text" as const, text: "sunny" }],
      }));
      await tool({}, {});
      await meter.flush();
      await tool({}, {});
      await meter.flush();
      await meter.close();
      const submitted = readSpool(meter.spoolPath).lines.filter((l) => l.type === "submitted");
      expect(submitted.map((l) => l.type === "submitted" && l.txHash)).toEqual(chain.sent.map((b) => keccak256(toHex(`tx ${b.batchId}`))));
      expect(chain.sent.map((b) => b.batchId)).toEqual([batchIdOf(server.address, 1), batchIdOf(server.address, 2)]);
    } finally {
      rmSync(spoolDir, { recursive: true, force: true });
    }
  });
});

describe("batch submitter, relay", () => {
  let api: Server;
  let apiUrl: string;
  const received: { body: any; status: number }[] = [];
  let answer: (body: any) => { status: number; json: unknown } = (body) => ({
    status: 200,
    json: { batchId: body.batch.batchId, txHash: `0x${"ab".repeat(32)}` },
  });

  beforeAll(async () => {
    api = createServer((req, res) => {
      let text = "";
      req.on("data", (d) => (text += d));
      req.on("end", () => {
        if (req.method !== "POST" || req.url !== "/api/usage/submit") return void res.writeHead(404).end();
        const body = JSON.parse(text);
        const { status, json } = answer(body);
        received.push({ body, status });
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(json));
      });
    });
    await new Promise<void>((r) => api.listen(0, "127.0.0.1", r));
    apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}/api`;
  });
  afterAll(async () => {
    api.closeAllConnections();
    await new Promise((r) => api.close(r));
  });

  const toBatch = (b: any): UsageBatch => ({ ...b, periodStart: BigInt(b.periodStart), periodEnd: BigInt(b.periodEnd) });

  test("posts the batch with the server's EIP-712 signature and a deadline; no records unless asked", async () => {
    const chain = fakeChain();
    const records = [record("weather"), record("news")];
    const before = Math.floor(Date.now() / 1000);
    const result = await submitterFor(chain, { kind: "relay", apiUrl }, { deadlineSeconds: 600 }).submit(closed(1, records));
    expect(result).toEqual({ batchId: batchIdOf(server.address, 1), txHash: `0x${"ab".repeat(32)}`, alreadyCommitted: false });
    expect(chain.sent).toEqual([]);
    const { body } = received.at(-1)!;
    expect(Object.keys(body).sort()).toEqual(["batch", "deadline", "signature"]);
    expect(typeof body.batch.periodStart).toBe("string");
    const deadline = BigInt(body.deadline);
    expect(deadline).toBeGreaterThanOrEqual(BigInt(before + 600));
    const batch = toBatch(body.batch);
    expect(
      await verifyTypedData({
        address: server.address,
        ...batchTypedData(batch, deadline, { chainId: CHAIN_ID, ledger: CONTRACTS.ledger }),
        signature: body.signature,
      }),
    ).toBe(true);
    expect(verifyBatchRecords(records, batch.merkleRoot)).toBe(true);
    expect(decryptLinesFor(batch.encryptedLines, weather.sk, "provider")[0].amountMicro).toBe(1_500n);

    await submitterFor(fakeChain(), { kind: "relay", apiUrl }, { sendRecords: true }).submit(closed(2, records));
    expect(received.at(-1)!.body.records).toEqual(records.map((r) => ({ ...r, priceMicro: r.priceMicro.toString() })));
  });

  test("the API checks a posted body off its thread (a worker), with the answers it gives on its thread", async () => {
    await submitterFor(fakeChain(), { kind: "relay", apiUrl }, { sendRecords: true }).submit(
      closed(9, [record("weather"), record("news")]),
    );
    const { body } = received.at(-1)!;
    const json = JSON.stringify(body);
    const target = { chainId: CHAIN_ID, ledger: CONTRACTS.ledger };
    const now = Math.floor(Date.now() / 1000);
    const fallbacks: string[] = [];
    const inWorker = workerChecker((reason) => fallbacks.push(reason));
    const checked = await inWorker(json, now, target);
    expect(checked).toEqual(await checkSubmission(json, now, target));
    expect(checked).toMatchObject({ signer: server.address, recordsMatch: true, deadline: BigInt(body.deadline) });
    expect((await inWorker(JSON.stringify({ ...body, records: body.records.slice(1) }), now, target)).recordsMatch).toBe(false);
    await expect(inWorker("{", now, target)).rejects.toMatchObject({ field: "body", status: 400 });
    await expect(inWorker(JSON.stringify({ ...body, deadline: "1" }), now, target)).rejects.toThrow(ApiInputError);
    expect(fallbacks).toEqual([]);
  });

  test("a batch the API reports taken (409) or committed without a transaction is success only if the chain has it", async () => {
    const batch = closed(3, [record("news")]);
    // Sent before a restart and rebuilt since (its encryption differs), so the API refuses the id.
    answer = () => ({
      status: 409,
      json: { error: { field: "batch.batchId", message: "is already used by this server for a different batch" } },
    });
    await expect(submitterFor(fakeChain(), { kind: "relay", apiUrl }).submit(batch)).rejects.toMatchObject({ status: 409 });
    // Mined between the submitter's first look at the ledger and the API's answer.
    const chain = fakeChain();
    const late = {
      ...chain.publicClient,
      readContract: async (a: any) => {
        // From the second look on, the chain holds the batch as the API received it.
        if (a.functionName === "batchHashOf" && chain.calls.includes("batchHashOf")) {
          chain.committed.set(batch.batchId, toBatch(received.at(-1)!.body.batch));
        }
        return chain.publicClient.readContract(a);
      },
    };
    expect(await submitterFor({ ...chain, publicClient: late } as never, { kind: "relay", apiUrl }).submit(batch)).toEqual({
      batchId: batch.batchId,
      txHash: null,
      alreadyCommitted: true,
    });

    answer = (body) => ({ status: 200, json: { batchId: body.batch.batchId, txHash: null } });
    await expect(submitterFor(fakeChain(), { kind: "relay", apiUrl }).submit(batch)).rejects.toThrow(
      /without a transaction, and the batch is not committed/,
    );
  });

  test("waits for the relayed transaction; API errors and foreign answers are errors", async () => {
    const batch = closed(3, [record("news")]);
    answer = (body) => ({ status: 200, json: { batchId: body.batch.batchId, txHash: `0x${"cd".repeat(32)}` } });
    await expect(submitterFor(fakeChain({ receiptStatus: "reverted" }), { kind: "relay", apiUrl }).submit(batch)).rejects.toThrow(
      /reverted/,
    );
    expect(await submitterFor(fakeChain(), { kind: "relay", apiUrl }).submit(batch)).toMatchObject({
      txHash: `0x${"cd".repeat(32)}`,
      alreadyCommitted: false,
    });

    answer = () => ({ status: 401, json: { error: { field: "signature", message: "not signed by an authorised server" } } });
    await expect(submitterFor(fakeChain(), { kind: "relay", apiUrl }).submit(batch)).rejects.toThrow(
      /answered 401: not signed by an authorised server/,
    );
    answer = () => ({ status: 200, json: { batchId: batchIdOf(server.address, 99), txHash: null } });
    await expect(submitterFor(fakeChain(), { kind: "relay", apiUrl }).submit(batch)).rejects.toThrow(/without batch/);
    await expect(submitterFor(fakeChain(), { kind: "relay", apiUrl: "http://127.0.0.1:9/" }).submit(batch)).rejects.toThrow(
      BatchSubmitError,
    );
  });

  test("the request body carries integers as decimal strings", () => {
    const batch: UsageBatch = {
      server: server.address,
      batchId: batchIdOf(server.address, 7),
      periodStart: 1n,
      periodEnd: 2n,
      merkleRoot: `0x${"01".repeat(32)}`,
      encryptedLines: "0x1234",
    };
    expect(submitRequestBody(batch, 99n, "0xabcd")).toEqual({
      batch: { ...batch, periodStart: "1", periodEnd: "2" },
      deadline: "99",
      signature: "0xabcd",
    });
  });
});
