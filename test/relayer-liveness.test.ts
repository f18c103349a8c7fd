import { type Address, createTestClient, type Hex, http, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Relayer, rpcClients } from "../src/api/relayer.js";
import { type Anvil, startAnvil } from "../src/chain/anvil.js";
import { ANVIL_KEYS, LOCAL_CHAIN_ID, localKey } from "../src/chain/local.js";
import { relayerReceiptTimeoutMs } from "../src/config/api.js";
import type { LogFields, Logger } from "../src/log.js";

// A relayed write is accepted by the node before it is mined. These tests take the node's side:
// mining is manual, so a transaction can be dropped from the pool or priced out by a base-fee
// spike between the relayer's send and the next block.

const TIMEOUT_MS = 400;
const TARGET: Address = privateKeyToAccount(ANVIL_KEYS[3]!).address;
const call = (marker: number) => ({ to: TARGET, data: toHex(`relayed write ${marker}`), gas: 60_000n });

let anvil: Anvil;
let clients: ReturnType<typeof rpcClients>;
let test: ReturnType<typeof createTestClient>;
let relayer: Relayer;
let lines: { level: string; fields: LogFields; message: string }[];

const recording = (): Logger => {
  const record = (level: string) => (fields: LogFields, message: string) => lines.push({ level, fields, message });
  return { error: record("error"), warn: record("warn"), info: record("info"), debug: record("debug") };
};

beforeAll(async () => {
  anvil = await startAnvil();
  clients = rpcClients(LOCAL_CHAIN_ID, anvil.rpcUrl);
  test = createTestClient({ mode: "anvil", transport: http(anvil.rpcUrl) });
  await test.setAutomine(false);
});

afterAll(async () => {
  await anvil?.stop();
});

afterEach(() => relayer?.close());

function newRelayer(): Relayer {
  lines = [];
  const { chain, publicClient, walletClient } = clients;
  relayer = new Relayer(privateKeyToAccount(localKey("relayer", LOCAL_CHAIN_ID)!), publicClient, walletClient, chain, recording(), {
    receiptTimeoutMs: TIMEOUT_MS,
  });
  return relayer;
}

const nonceAt = (blockTag: "latest" | "pending") => clients.publicClient.getTransactionCount({ address: relayer.address, blockTag });

async function until(what: string, condition: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The relayer's transactions mined in the newest block, by nonce: their calldata and hash. */
async function minedByNonce(): Promise<Map<number, { data: Hex; hash: Hex; maxFeePerGas?: bigint }>> {
  const block = await clients.publicClient.getBlock({ includeTransactions: true });
  const mine = block.transactions.filter((t) => t.from.toLowerCase() === relayer.address.toLowerCase());
  return new Map(mine.map((t) => [t.nonce, { data: t.input, hash: t.hash, maxFeePerGas: t.maxFeePerGas ?? undefined }]));
}

describe("relayer liveness", () => {
  it("resends a dropped transaction so that the write queued behind its nonce lands too", async () => {
    const r = newRelayer();
    const start = await nonceAt("latest");
    const first = await r.send(call(1));
    await test.dropTransaction({ hash: first });
    expect(await nonceAt("pending")).toBe(start); // the node has forgotten it: a gap at `start`

    const second = await r.send(call(2));
    expect(r.pendingTransactions().map((p) => p.nonce)).toEqual([start, start + 1]);
    await test.mine({ blocks: 1 });
    expect(await nonceAt("latest")).toBe(start); // nothing lands behind the gap

    await until("the gap to be filled", async () => (await nonceAt("pending")) === start + 2);
    await test.mine({ blocks: 1 });
    expect(await nonceAt("latest")).toBe(start + 2);
    const mined = await minedByNonce();
    expect(mined.get(start)?.data).toBe(call(1).data);
    expect(mined.get(start)?.hash).not.toBe(first);
    expect(mined.get(start + 1)).toEqual(expect.objectContaining({ data: call(2).data, hash: second }));

    const replaced = lines.filter((l) => l.message === "relayed transaction replaced");
    expect(replaced.map((l) => [l.fields.nonce, l.fields.reason, l.fields.txHash])).toEqual([[start, "dropped", first]]);
    expect(lines.some((l) => l.message === "relayer nonce gap: resending")).toBe(true);

    // Once mined, nothing is pending; the next write takes the next nonce.
    await r.send(call(3));
    expect(r.pendingTransactions().map((p) => p.nonce)).toEqual([start + 2]);
    await test.mine({ blocks: 1 });
    expect((await minedByNonce()).get(start + 2)?.data).toBe(call(3).data);
  });

  it("replaces a transaction priced out by a base-fee spike with the same nonce and fees raised ≥ 10%", async () => {
    const r = newRelayer();
    const start = await nonceAt("latest");
    const stuck = await r.send(call(4));
    const original = await clients.publicClient.getTransaction({ hash: stuck });
    // The next blocks' base fee jumps far above the transaction's fee cap.
    await test.setNextBlockBaseFeePerGas({ baseFeePerGas: original.maxFeePerGas! * 20n });
    await test.mine({ blocks: 1 });
    expect(await nonceAt("latest")).toBe(start);

    await until("a replacement", () => lines.some((l) => l.message === "relayed transaction replaced"));
    const [replacement] = r.pendingTransactions();
    expect(replacement!.nonce).toBe(start);
    expect(replacement!.hash).not.toBe(stuck);
    const sent = await clients.publicClient.getTransaction({ hash: replacement!.hash });
    expect(sent.nonce).toBe(start);
    expect(sent.input).toBe(call(4).data);
    expect(sent.maxFeePerGas! * 10n).toBeGreaterThanOrEqual(original.maxFeePerGas! * 11n);
    expect(sent.maxPriorityFeePerGas! * 10n).toBeGreaterThanOrEqual(original.maxPriorityFeePerGas! * 11n);

    await test.mine({ blocks: 1 });
    expect(await nonceAt("latest")).toBe(start + 1);
    expect((await minedByNonce()).get(start)).toEqual(expect.objectContaining({ data: call(4).data, hash: replacement!.hash }));
    const [line] = lines.filter((l) => l.message === "relayed transaction replaced");
    // Whether the node still holds the priced-out transaction ("not mined") or has evicted it
    // ("dropped") is the node's choice; either way the nonce is re-sent with higher fees.
    expect(line!.fields).toEqual(
      expect.objectContaining({
        nonce: start,
        reason: expect.stringMatching(/^(not mined|dropped)$/),
        txHash: stuck,
        replacedBy: replacement!.hash,
      }),
    );
  });

  it("logs nonces, addresses and hashes only: no key, no calldata, no amounts", () => {
    const text = JSON.stringify(lines);
    expect(text).not.toContain(localKey("relayer", LOCAL_CHAIN_ID)!.slice(2));
    expect(text).not.toContain(call(4).data.slice(2));
    for (const { fields } of lines) expect(Object.keys(fields)).not.toEqual(expect.arrayContaining(["amount"]));
  });

  it("reads its timeout from RELAYER_RECEIPT_TIMEOUT_S (60 s by default)", () => {
    expect(relayerReceiptTimeoutMs({})).toBe(60_000);
    expect(relayerReceiptTimeoutMs({ RELAYER_RECEIPT_TIMEOUT_S: "5" })).toBe(5_000);
    expect(() => relayerReceiptTimeoutMs({ RELAYER_RECEIPT_TIMEOUT_S: "0" })).toThrow(
      /RELAYER_RECEIPT_TIMEOUT_S must be an integer from 1/,
    );
  });
});
