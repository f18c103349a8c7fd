/**
 * The API's write routes against a real anvil and a real indexer process: providers registered
 * with the operator's signature, a server's signed batch relayed, and what the indexer then
 * serves. Payout accounts are registered in the eERC Registrar with real proofs.
 */

import { readFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { type Address, getAddress, type Hex, keccak256, type TypedDataDefinition, toHex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProviderRegistryAbi } from "../abis/ProviderRegistryAbi.js";
import { UsageLedgerAbi } from "../abis/UsageLedgerAbi.js";
import { type Anvil, startAnvil } from "../src/chain/anvil.js";
import { type ChainClients, connectChain } from "../src/chain/clients.js";
import { relayerKey } from "../src/config/api.js";
import type { DeploymentManifest } from "../src/deployment/manifest.js";
import type { EercClient } from "../src/eerc/client.js";
import { Prover } from "../src/eerc/prover.js";
import { ApiInputError } from "../src/http/input.js";
import { checkDeadline, MAX_DEADLINE_LEAD_S } from "../src/http/signed.js";
import { type RunningIndexer, startIndexer } from "../src/indexer/process.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import {
  type BuiltBatch,
  batchHash,
  batchTypedData,
  buildBatch,
  type CallRecord,
  decodeEncryptedLines,
  decryptLinesFor,
  fetchLineKeys,
  type LineKeys,
  nonceKeyOf,
  type Pricing,
  PricingModel,
  providerIdOf,
  registerProviderTypedData,
  setActiveTypedData,
  type UsageBatch,
  updatePricingTypedData,
} from "../src/usage/index.js";
import { freePool, perCall } from "../src/usage/pricing.js";
import { accounts, connectClient, deployForIndexer } from "./indexer-helpers.js";

const [operator, coingeckoAcct, etherscanAcct, defillamaAcct, competitorAcct, unregistered, server, rogueServer, relayer] = accounts;
const UINT64_MAX = (1n << 64n) - 1n;
const RELAYER_KEY = "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97";

const now = () => Math.floor(Date.now() / 1000);
const soon = () => BigInt(now() + 600);

type Answer = { status: number; body: any; ms: number };

describe("API write routes: provider registration and usage submission, indexed", () => {
  let anvil: Anvil;
  let chain: ChainClients;
  const prover = new Prover();
  let manifest: DeploymentManifest;
  let dir: string;
  let indexer: RunningIndexer;
  let registry: Address, ledger: Address;
  const eerc: Record<string, EercClient> = {};
  let keys: LineKeys;

  const post = async (path: string, body: unknown, raw = false): Promise<Answer> => {
    const started = performance.now();
    const res = await fetch(`${indexer.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: raw ? (body as string) : JSON.stringify(body),
    });
    const text = await res.text();
    const ms = performance.now() - started;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, body: json, ms };
  };
  /**
   * Declares a body of `bytes` bytes and sends only its first 64 KiB: the API must answer from the
   * declared length without reading the rest (a client still uploading would otherwise see a reset).
   */
  const postDeclaringSize = (path: string, bytes: number): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      const req = request(`${indexer.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": String(bytes) },
      });
      req.on("response", (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => {
          req.destroy();
          resolve({ status: res.statusCode!, body: JSON.parse(text), ms: performance.now() - started });
        });
      });
      req.on("error", reject);
      req.write(Buffer.alloc(64 * 1024, " "));
    });
  const graphql = async (query: string, variables: Record<string, unknown> = {}) => {
    const res = await fetch(`${indexer.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data?: any; errors?: unknown[] };
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    return body.data;
  };
  const expectError = (answer: Answer, status: number, field: string | null) => {
    expect({ status: answer.status, field: answer.body?.error?.field }, JSON.stringify(answer.body)).toEqual({ status, field });
    expect(typeof answer.body.error.message).toBe("string");
  };
  const read = <T>(address: Address, abi: readonly unknown[], functionName: string, args: readonly unknown[] = []) =>
    chain.publicClient.readContract({ address, abi, functionName, args } as never) as Promise<T>;
  /** The owner's next nonce in the lane of `providerId`'s requests (key included). */
  const ownerNonce = (providerId: Hex) => read<bigint>(registry, ProviderRegistryAbi, "nonces", [operator.address, nonceKeyOf(providerId)]);
  const registryTarget = () => ({ chainId: chain.chain.id, registry });
  const ledgerTarget = () => ({ chainId: chain.chain.id, ledger });
  const settle = async (txHash: Hex) => {
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash: txHash });
    expect(receipt.status).toBe("success");
    await new IndexerClient(indexer.url).waitForBlock(receipt.blockNumber);
    return receipt;
  };

  // ---------------------------------------------------------------- request bodies

  const pricingJson = {
    coingecko: { model: "PerCall", pricePerCallMicro: "1500" },
    etherscan: {
      model: "Tiered",
      tiers: [
        { upToCalls: "100", priceMicro: "0" },
        { upToCalls: UINT64_MAX.toString(), priceMicro: "20" },
      ],
    },
    defillama: { model: "FreePool", poolWeight: 3 },
  } as const;
  const pricingOf: Record<keyof typeof pricingJson, Pricing> = {
    coingecko: perCall(1500n),
    etherscan: {
      model: PricingModel.Tiered,
      pricePerCallMicro: 0n,
      poolWeight: 0,
      tiers: [
        { upToCalls: 100n, priceMicro: 0n },
        { upToCalls: UINT64_MAX, priceMicro: 20n },
      ],
    },
    defillama: freePool(3),
  };

  async function registerBody(
    namespace: string,
    payoutAccount: Address,
    pricing: object,
    typedPricing: Pricing,
    o: { signer?: typeof operator; nonce?: bigint; deadline?: bigint; chainId?: number } = {},
  ) {
    const nonce = o.nonce ?? (await ownerNonce(providerIdOf(namespace)));
    const deadline = o.deadline ?? soon();
    const typed = registerProviderTypedData(
      { namespace, payoutAccount, pricing: typedPricing, nonce, deadline },
      { ...registryTarget(), ...(o.chainId ? { chainId: o.chainId } : {}) },
    );
    const signature = await (o.signer ?? operator).signTypedData(typed as TypedDataDefinition);
    return { namespace, payoutAccount, pricing, deadline: deadline.toString(), signature };
  }

  let counter = 0;
  const period = { periodStart: 1_700_000_000_000, periodEnd: 1_700_001_000_000 };
  const record = (provider: string, overrides: Partial<CallRecord> = {}): CallRecord => {
    counter += 1;
    return {
      eventId: `evt-${counter}-${keccak256(toHex(counter)).slice(2, 10)}`,
      provider,
      tool: "lookup",
      startedAt: period.periodStart + counter * 10,
      endedAt: period.periodStart + counter * 10 + 5,
      durationMs: 5,
      outcome: "ok",
      requestBytes: 100,
      responseBytes: 900,
      billable: true,
      priceMicro: 1_500n,
      ...overrides,
    };
  };
  let sequence = 0;
  const nextBatch = (records: CallRecord[], from: Address = server.address): BuiltBatch =>
    buildBatch({ server: from, sequence: ++sequence, ...period, records, keys });
  const batchJson = (b: UsageBatch) => ({
    server: b.server,
    batchId: b.batchId,
    periodStart: b.periodStart.toString(),
    periodEnd: b.periodEnd.toString(),
    merkleRoot: b.merkleRoot,
    encryptedLines: b.encryptedLines,
  });
  const recordsJson = (records: CallRecord[]) => records.map((r) => ({ ...r, priceMicro: r.priceMicro.toString() }));
  async function submitBody(
    b: UsageBatch,
    o: { signer?: typeof server; deadline?: bigint; target?: { chainId: number; ledger: Address }; records?: CallRecord[] } = {},
  ) {
    const deadline = o.deadline ?? soon();
    const signature = await (o.signer ?? server).signTypedData(
      batchTypedData(b, deadline, o.target ?? ledgerTarget()) as TypedDataDefinition,
    );
    return { batch: batchJson(b), deadline: deadline.toString(), signature, ...(o.records ? { records: recordsJson(o.records) } : {}) };
  }

  beforeAll(async () => {
    anvil = await startAnvil();
    chain = await connectChain(anvil.rpcUrl);
    const deployed = await deployForIndexer({ rpcUrl: anvil.rpcUrl, prover });
    manifest = deployed.manifest;
    dir = deployed.dir;
    registry = manifest.contracts.providerRegistry;
    ledger = manifest.contracts.usageLedger;
    const roles = { operator: 0, coingecko: 1, etherscan: 2, defillama: 3, competitor: 4, auditor: 9 } as const;
    for (const [name, i] of Object.entries(roles)) {
      eerc[name] = await connectClient(chain, manifest, prover, i);
      if (name !== "auditor") await eerc[name]!.register();
    }
    indexer = await startIndexer({
      manifestPath: deployed.manifestPath,
      env: { RPC_URL: anvil.rpcUrl, RELAYER_PRIVATE_KEY: undefined },
      pgliteDir: join(dir, "pglite"),
      logFile: join(dir, "ponder.log"),
    });
  });

  afterAll(async () => {
    await indexer?.stop();
    await prover.close();
    await anvil?.stop();
  });

  it("registers providers with the operator's signature, relayed by the API, and indexes them", async () => {
    for (const [namespace, acct] of [
      ["coingecko", coingeckoAcct],
      ["etherscan", etherscanAcct],
      ["defillama", defillamaAcct],
    ] as const) {
      const answer = await post(
        "/providers/register",
        await registerBody(namespace, acct.address, pricingJson[namespace], pricingOf[namespace]),
      );
      expect(answer.status, JSON.stringify(answer.body)).toBe(201);
      expect(answer.body).toEqual({ providerId: providerIdOf(namespace), txHash: expect.stringMatching(/^0x[0-9a-f]{64}$/) });
      const receipt = await settle(answer.body.txHash);
      expect(getAddress(receipt.from)).toBe(getAddress(relayer.address));
    }
    const onChain = await read<{ payoutAccount: Address; pricing: unknown }>(registry, ProviderRegistryAbi, "getProvider", [
      providerIdOf("etherscan"),
    ]);
    expect(onChain.payoutAccount).toBe(getAddress(etherscanAcct.address));
    expect(onChain.pricing).toEqual(pricingOf.etherscan);

    const data = await graphql(
      `{ providers(orderBy: "namespace") { items { providerId namespace payoutAccount active pricingModel pricePerCallMicro poolWeight tierUpToCalls tierPriceMicro changes { items { kind } } } } }`,
    );
    expect(data.providers.items).toEqual([
      {
        providerId: providerIdOf("coingecko"),
        namespace: "coingecko",
        payoutAccount: coingeckoAcct.address.toLowerCase(),
        active: true,
        pricingModel: "PerCall",
        pricePerCallMicro: "1500",
        poolWeight: 0,
        tierUpToCalls: [],
        tierPriceMicro: [],
        changes: { items: [{ kind: "registered" }] },
      },
      expect.objectContaining({ namespace: "defillama", pricingModel: "FreePool", poolWeight: 3, pricePerCallMicro: "0" }),
      expect.objectContaining({
        namespace: "etherscan",
        pricingModel: "Tiered",
        tierUpToCalls: ["100", UINT64_MAX.toString()],
        tierPriceMicro: ["0", "20"],
      }),
    ]);
  });

  it("updates pricing and the active flag with owner signatures; the indexer keeps the history", async () => {
    const providerId = providerIdOf("coingecko");
    let nonce = await ownerNonce(providerId);
    let deadline = soon();
    let signature = await operator.signTypedData(
      updatePricingTypedData(
        { providerId, pricing: { ...pricingOf.coingecko, pricePerCallMicro: 2_000n }, nonce, deadline },
        registryTarget(),
      ) as TypedDataDefinition,
    );
    let answer = await post("/providers/update", {
      providerId,
      pricing: { model: "PerCall", pricePerCallMicro: "2000" },
      nonce: nonce.toString(),
      deadline: deadline.toString(),
      signature,
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body.providerId).toBe(providerId);
    await settle(answer.body.txHash);

    nonce = await ownerNonce(providerId);
    deadline = soon();
    signature = await operator.signTypedData(
      setActiveTypedData({ providerId, active: false, nonce, deadline }, registryTarget()) as TypedDataDefinition,
    );
    answer = await post("/providers/update", { providerId, active: false, deadline: deadline.toString(), signature });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    await settle(answer.body.txHash);
    nonce = await ownerNonce(providerId);
    signature = await operator.signTypedData(
      setActiveTypedData({ providerId, active: true, nonce, deadline }, registryTarget()) as TypedDataDefinition,
    );
    answer = await post("/providers/update", { providerId, active: true, deadline: deadline.toString(), signature });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    await settle(answer.body.txHash);

    const data = await graphql(
      `query ($id: String!) { providerChanges(where: { providerId: $id }, orderBy: "blockNumber") { items { kind active pricePerCallMicro payoutAccount } } }`,
      { id: providerId },
    );
    expect(data.providerChanges.items).toEqual([
      { kind: "registered", active: true, pricePerCallMicro: "1500", payoutAccount: coingeckoAcct.address.toLowerCase() },
      { kind: "pricing", active: true, pricePerCallMicro: "2000", payoutAccount: coingeckoAcct.address.toLowerCase() },
      { kind: "active", active: false, pricePerCallMicro: "2000", payoutAccount: coingeckoAcct.address.toLowerCase() },
      { kind: "active", active: true, pricePerCallMicro: "2000", payoutAccount: coingeckoAcct.address.toLowerCase() },
    ]);
  });

  it("keeps one nonce lane per provider: a signed request for one provider that is not sent blocks no other", async () => {
    const etherscan = providerIdOf("etherscan");
    const defillama = providerIdOf("defillama");
    const deadline = soon();
    const sign = (providerId: Hex, nonce: bigint) =>
      operator.signTypedData(setActiveTypedData({ providerId, active: true, nonce, deadline }, registryTarget()) as TypedDataDefinition);
    // Signed for etherscan with its lane's next nonce, and held back.
    const pendingNonce = await ownerNonce(etherscan);
    const pending = { providerId: etherscan, active: true, nonce: pendingNonce.toString(), deadline: deadline.toString() };
    const pendingSignature = await sign(etherscan, pendingNonce);

    // defillama's request goes through meanwhile.
    const other = await post("/providers/update", {
      providerId: defillama,
      active: true,
      deadline: deadline.toString(),
      signature: await sign(defillama, await ownerNonce(defillama)),
    });
    expect(other.status, JSON.stringify(other.body)).toBe(200);
    await settle(other.body.txHash);

    // etherscan's next request waits for the held one: 409, naming the lane's next nonce.
    const next = await post("/providers/update", {
      ...pending,
      nonce: (pendingNonce + 1n).toString(),
      signature: await sign(etherscan, pendingNonce + 1n),
    });
    expectError(next, 409, "nonce");
    expect(next.body.error.message).toContain(`(${pendingNonce})`);
    const held = await post("/providers/update", { ...pending, signature: pendingSignature });
    expect(held.status, JSON.stringify(held.body)).toBe(200);
    await settle(held.body.txHash);
    expect(await ownerNonce(etherscan)).toBe(pendingNonce + 1n);
  });

  it("serves a provider's earnings by provider id (its payout account's), as at /accounts, and 404 for an unknown id", async () => {
    const api = new IndexerClient(indexer.url);
    const { pending: _p, ...byId } = await api.providerEarnings(providerIdOf("coingecko"));
    const { pending: _a, ...byAccount } = await api.earnings(coingeckoAcct.address);
    expect(byId.account).toBe(getAddress(coingeckoAcct.address));
    expect(byId).toEqual(byAccount);
    const unknown = await fetch(`${indexer.url}/providers/${providerIdOf("nobody")}/earnings`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { field: string } }).error.field).toBe("providerId");
  });

  it("indexes server authorisations made by the owner", async () => {
    const hash = await chain
      .walletFor(operator)
      .writeContract({ address: ledger, abi: UsageLedgerAbi, functionName: "setServer", args: [server.address, true] } as never);
    await settle(hash);
    const data = await graphql(
      `{ usageServers { items { server authorised txHash } } serverAuthorisations { items { server authorised } } }`,
    );
    expect(data.usageServers.items).toEqual([{ server: server.address.toLowerCase(), authorised: true, txHash: hash }]);
    expect(data.serverAuthorisations.items).toEqual([{ server: server.address.toLowerCase(), authorised: true }]);
    keys = await fetchLineKeys(
      chain.publicClient,
      { ...manifest.contracts },
      operator.address,
      ["coingecko", "etherscan", "defillama"].map(providerIdOf),
    );
  });

  let first: { built: BuiltBatch; records: CallRecord[]; body: Awaited<ReturnType<typeof submitBody>>; txHash: Hex };

  it("relays a server-signed batch for three providers; each provider decrypts exactly its own line from the indexed bytes", async () => {
    const records = [
      record("coingecko"),
      record("coingecko"),
      record("coingecko", { outcome: "tool_error", billable: false, priceMicro: 0n }),
      record("etherscan", { priceMicro: 0n }),
      record("defillama", { priceMicro: 0n }),
      record("defillama", { priceMicro: 0n }),
    ];
    const built = nextBatch(records);
    const body = await submitBody(built.batch, { records });
    const answer = await post("/usage/submit", body);
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body).toEqual({ batchId: built.batch.batchId, txHash: expect.stringMatching(/^0x[0-9a-f]{64}$/) });
    first = { built, records, body, txHash: answer.body.txHash };
    const receipt = await settle(answer.body.txHash);
    expect(getAddress(receipt.from)).toBe(getAddress(relayer.address));
    expect(await read(ledger, UsageLedgerAbi, "batchHashOf", [server.address, built.batch.batchId])).toBe(batchHash(built.batch));

    const data = await graphql(
      `query ($s: String!, $b: String!) { usageCommitment(server: $s, batchId: $b) {
         server batchId periodStart periodEnd merkleRoot encryptedLines batchHash lineCount txHash blockNumber
         lines(orderBy: "position") { items { position ephemeralKey nonce lineCommitment providerCiphertext operatorCiphertext auditorCiphertext } } } }`,
      { s: server.address.toLowerCase(), b: built.batch.batchId },
    );
    const row = data.usageCommitment;
    expect(row).toMatchObject({
      server: server.address.toLowerCase(),
      batchId: built.batch.batchId,
      periodStart: built.batch.periodStart.toString(),
      periodEnd: built.batch.periodEnd.toString(),
      merkleRoot: built.batch.merkleRoot,
      encryptedLines: built.batch.encryptedLines.toLowerCase(),
      batchHash: batchHash(built.batch),
      lineCount: 4,
      txHash: answer.body.txHash,
      blockNumber: receipt.blockNumber.toString(),
    });
    // The rows are the bytes split line by line, in committed order.
    const words = decodeEncryptedLines(row.encryptedLines);
    expect(
      row.lines.items.map((l: any) =>
        [...l.ephemeralKey, l.nonce, l.lineCommitment, ...l.providerCiphertext, ...l.operatorCiphertext, ...l.auditorCiphertext].map(
          BigInt,
        ),
      ),
    ).toEqual(words);

    const indexed = row.encryptedLines as Hex;
    const own = (name: string) => decryptLinesFor(indexed, eerc[name]!.exportPrivateKey(), "provider");
    expect(own("coingecko")).toEqual([
      { providerId: providerIdOf("coingecko"), calls: 3n, billableCalls: 2n, amountMicro: 3_000n, revenueMicro: 0n },
    ]);
    expect(own("etherscan")).toEqual([
      { providerId: providerIdOf("etherscan"), calls: 1n, billableCalls: 1n, amountMicro: 0n, revenueMicro: 0n },
    ]);
    expect(own("defillama")).toEqual([
      { providerId: providerIdOf("defillama"), calls: 2n, billableCalls: 2n, amountMicro: 0n, revenueMicro: 0n },
    ]);
    expect(own("competitor")).toEqual([]);
    expect(decryptLinesFor(indexed, eerc.operator!.exportPrivateKey(), "operator")).toEqual(built.lines);
    expect(decryptLinesFor(indexed, eerc.auditor!.exportPrivateKey(), "auditor")).toEqual(built.lines);
  });

  it("answers a resubmission of the same batch with the same transaction, without sending anything", async () => {
    const block = await chain.publicClient.getBlockNumber();
    const again = await post("/usage/submit", first.body);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ batchId: first.built.batch.batchId, txHash: first.txHash });
    // A fresh signature (another deadline) over the same batch is the same submission.
    const resigned = await post("/usage/submit", await submitBody(first.built.batch, { deadline: soon() + 5n }));
    expect(resigned.body).toEqual({ batchId: first.built.batch.batchId, txHash: first.txHash });
    expect(await chain.publicClient.getBlockNumber()).toBe(block);
  });

  it("finds the transaction of a batch the server committed itself", async () => {
    const built = nextBatch([record("etherscan"), record("coingecko")]);
    const hash = await chain
      .walletFor(server)
      .writeContract({ address: ledger, abi: UsageLedgerAbi, functionName: "commit", args: [built.batch] } as never);
    await chain.publicClient.waitForTransactionReceipt({ hash });
    // Not indexed yet or indexed: either way the answer names the committing transaction.
    const answer = await post("/usage/submit", await submitBody(built.batch));
    expect(answer.body).toEqual({ batchId: built.batch.batchId, txHash: hash });
    await settle(hash);
    expect((await post("/usage/submit", await submitBody(built.batch))).body).toEqual({ batchId: built.batch.batchId, txHash: hash });
  });

  it("serialises the relayer's nonces across concurrent submissions", async () => {
    const batches = Array.from({ length: 6 }, (_, i) => nextBatch([record(["coingecko", "etherscan", "defillama"][i % 3]!)]));
    const bodies = await Promise.all(batches.map((b) => submitBody(b.batch)));
    // Each batch twice, all at once: six transactions, each answered twice with the same hash.
    const answers = await Promise.all([...bodies, ...bodies].map((b) => post("/usage/submit", b)));
    for (const a of answers) expect(a.status, JSON.stringify(a.body)).toBe(200);
    const hashes = answers.map((a) => a.body.txHash as Hex);
    expect(hashes.slice(0, 6)).toEqual(hashes.slice(6));
    expect(new Set(hashes.slice(0, 6)).size).toBe(6);
    const receipts = await Promise.all(hashes.slice(0, 6).map((hash) => chain.publicClient.waitForTransactionReceipt({ hash })));
    expect(receipts.every((r) => r.status === "success")).toBe(true);
    await new IndexerClient(indexer.url).waitForBlock(receipts.reduce((m, r) => (r.blockNumber > m ? r.blockNumber : m), 0n));
    const data = await graphql(`{ usageCommitments(limit: 100) { totalCount } }`);
    expect(data.usageCommitments.totalCount).toBe(8);
  });

  describe("bad requests: 4xx JSON naming the field, nothing sent", () => {
    let before: { block: bigint; relayerNonce: number; commitments: number; providers: number };
    const snapshot = async () => ({
      block: await chain.publicClient.getBlockNumber(),
      relayerNonce: await chain.publicClient.getTransactionCount({ address: relayer.address }),
      commitments: (await graphql(`{ usageCommitments { totalCount } }`)).usageCommitments.totalCount as number,
      providers: (await graphql(`{ providers { totalCount } }`)).providers.totalCount as number,
    });
    beforeAll(async () => {
      before = await snapshot();
    });
    afterAll(async () => {
      expect(await snapshot()).toEqual(before);
    });

    it("malformed JSON, wrong types and unknown fields", async () => {
      expectError(await post("/usage/submit", "{ not json", true), 400, "body");
      expectError(await post("/usage/submit", "[]", true), 400, "body");
      expectError(await post("/providers/register", "null", true), 400, "body");
      const body = await submitBody(nextBatch([record("coingecko")]).batch);
      expectError(await post("/usage/submit", { ...body, extra: 1 }), 400, "extra");
      expectError(await post("/usage/submit", { ...body, batch: { ...body.batch, periodStart: true } }), 400, "batch.periodStart");
      expectError(await post("/usage/submit", { ...body, batch: { ...body.batch, periodStart: "-1" } }), 400, "batch.periodStart");
      expectError(await post("/usage/submit", { ...body, batch: { ...body.batch, periodEnd: "1e3" } }), 400, "batch.periodEnd");
      expectError(await post("/usage/submit", { ...body, batch: { ...body.batch, server: "0x1234" } }), 400, "batch.server");
      expectError(await post("/usage/submit", { ...body, batch: { ...body.batch, batchId: "0xabcd" } }), 400, "batch.batchId");
      expectError(await post("/usage/submit", { ...body, batch: { ...body.batch, merkleRoot: 5 } }), 400, "batch.merkleRoot");
      expectError(
        await post("/usage/submit", { ...body, batch: { ...body.batch, merkleRoot: `0x${"0".repeat(64)}` } }),
        400,
        "batch.merkleRoot",
      );
      expectError(await post("/usage/submit", { ...body, batch: { ...body.batch, encryptedLines: "0xzz" } }), 400, "batch.encryptedLines");
      expectError(
        await post("/usage/submit", { ...body, batch: { ...body.batch, encryptedLines: "0x1234" } }),
        400,
        "batch.encryptedLines",
      );
      expectError(
        await post("/usage/submit", {
          ...body,
          batch: { ...body.batch, periodStart: body.batch.periodEnd, periodEnd: body.batch.periodStart },
        }),
        400,
        "batch.periodEnd",
      );
      expectError(await post("/usage/submit", { ...body, deadline: 1.5 }), 400, "deadline");
      expectError(await post("/usage/submit", { ...body, signature: "0x1234" }), 400, "signature");
      const { batch: _b, ...noBatch } = body;
      expectError(await post("/usage/submit", noBatch), 400, "batch");
    });

    it("records: negative or non-integer amounts, bad fields, a root that does not match", async () => {
      const records = [record("coingecko"), record("etherscan", { priceMicro: 20n })];
      const built = nextBatch(records);
      const body = await submitBody(built.batch, { records });
      const withRecord = (patch: Record<string, unknown>) => ({
        ...body,
        records: [{ ...body.records![0]!, ...patch }, body.records![1]!],
      });
      expectError(await post("/usage/submit", withRecord({ priceMicro: "-5" })), 400, "records[0].priceMicro");
      expectError(await post("/usage/submit", withRecord({ priceMicro: "1.5" })), 400, "records[0].priceMicro");
      expectError(await post("/usage/submit", withRecord({ priceMicro: 1.5 })), 400, "records[0].priceMicro");
      expectError(await post("/usage/submit", withRecord({ priceMicro: -5 })), 400, "records[0].priceMicro");
      expectError(await post("/usage/submit", withRecord({ durationMs: -1 })), 400, "records[0].durationMs");
      expectError(await post("/usage/submit", withRecord({ requestBytes: 2.5 })), 400, "records[0].requestBytes");
      expectError(await post("/usage/submit", withRecord({ billable: false })), 400, "records[0].priceMicro");
      expectError(await post("/usage/submit", withRecord({ provider: "coin-gecko" })), 400, "records[0].provider");
      expectError(await post("/usage/submit", withRecord({ startedAt: 1 })), 400, "records[0]");
      expectError(await post("/usage/submit", { ...body, records: "all" }), 400, "records");
      expectError(await post("/usage/submit", { ...body, records: [body.records![0], body.records![0]] }), 400, "records[1].eventId");
      // A record dropped, or its price changed: the Merkle root no longer matches.
      expectError(await post("/usage/submit", { ...body, records: [body.records![0]] }), 400, "records");
      expectError(await post("/usage/submit", withRecord({ priceMicro: "1501" })), 400, "records");
    });

    it("only JSON, and no cross-origin answer: a text/plain or form write is refused before it is read", async () => {
      const body = JSON.stringify(await submitBody(nextBatch([record("coingecko")]).batch));
      for (const type of ["text/plain", "application/x-www-form-urlencoded"]) {
        const res = await fetch(`${indexer.url}/usage/submit`, { method: "POST", headers: { "content-type": type }, body });
        expect(res.status).toBe(415);
        expect(((await res.json()) as { error: { field: string } }).error.field).toBe("body");
      }
      const write = await fetch(`${indexer.url}/providers/update`, {
        method: "POST",
        headers: { "content-type": "application/json", origin: "https://elsewhere.example" },
        body: "{}",
      });
      expect(write.status).toBe(400);
      expect(write.headers.get("access-control-allow-origin")).toBeNull();
      // Reads stay open to every origin (Ponder's own policy).
      const read = await fetch(`${indexer.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", origin: "https://elsewhere.example" },
        body: JSON.stringify({ query: "{ __typename }" }),
      });
      expect(read.headers.get("access-control-allow-origin")).toBe("*");
    });

    it("oversize: more than 10,000 records, or a body over 8 MiB", async () => {
      const body = await submitBody(nextBatch([record("coingecko")]).batch);
      const many = Array.from({ length: 10_001 }, (_, i) => ({ ...recordsJson([record("coingecko")])[0], eventId: `bulk-${i}` }));
      expectError(await post("/usage/submit", { ...body, records: many }), 413, "records");
      expectError(await postDeclaringSize("/usage/submit", 9 * 1024 * 1024), 413, "body");
    });

    it("signatures: wrong signer, altered batch, replayed on another batch, other chain or contract, expired or too far", async () => {
      const built = nextBatch([record("coingecko"), record("defillama", { priceMicro: 0n })]);
      const body = await submitBody(built.batch);
      expectError(await post("/usage/submit", await submitBody(built.batch, { signer: rogueServer })), 401, "signature");
      expectError(
        await post("/usage/submit", { ...body, batch: { ...body.batch, periodEnd: (built.batch.periodEnd + 1n).toString() } }),
        401,
        "signature",
      );
      expectError(
        await post("/usage/submit", { ...body, batch: { ...body.batch, merkleRoot: first.built.batch.merkleRoot } }),
        401,
        "signature",
      );
      expectError(await post("/usage/submit", { ...body, deadline: (BigInt(body.deadline) + 1n).toString() }), 401, "signature");
      const other = nextBatch([record("etherscan")]);
      expectError(await post("/usage/submit", { ...body, batch: batchJson(other.batch) }), 401, "signature");
      expectError(await post("/usage/submit", await submitBody(built.batch, { target: { chainId: 43113, ledger } })), 401, "signature");
      expectError(
        await post("/usage/submit", await submitBody(built.batch, { target: { chainId: chain.chain.id, ledger: registry } })),
        401,
        "signature",
      );
      expectError(await post("/usage/submit", await submitBody(built.batch, { deadline: BigInt(now() - 10) })), 400, "deadline");
      expectError(await post("/usage/submit", await submitBody(built.batch, { deadline: BigInt(now() + 5) })), 400, "deadline");
      expectError(
        await post("/usage/submit", await submitBody(built.batch, { deadline: BigInt(now() + 2 * MAX_DEADLINE_LEAD_S) })),
        400,
        "deadline",
      );
    });

    it("unauthorised server; a used batch id with a different batch", async () => {
      const rogue = nextBatch([record("coingecko")], rogueServer.address);
      expectError(await post("/usage/submit", await submitBody(rogue.batch, { signer: rogueServer })), 403, "batch.server");
      // Same id as the first batch, other content, validly signed by the server.
      const reused: UsageBatch = { ...nextBatch([record("coingecko")]).batch, batchId: first.built.batch.batchId };
      expectError(await post("/usage/submit", await submitBody(reused)), 409, "batch.batchId");
    });

    it("provider registration: bad payout account, namespace, pricing, signer, nonce, deadline; unknown provider on update", async () => {
      const reg = (ns: string, acct: Address, pricing: object, typed: Pricing, o?: Parameters<typeof registerBody>[4]) =>
        registerBody(ns, acct, pricing, typed, o);
      const perCallJson = { model: "PerCall", pricePerCallMicro: "10" };
      const perCallTyped: Pricing = perCall(10n);
      expectError(
        await post("/providers/register", await reg("newcomer", unregistered.address, perCallJson, perCallTyped)),
        422,
        "payoutAccount",
      );
      expectError(
        await post("/providers/register", {
          ...(await reg("newcomer", competitorAcct.address, perCallJson, perCallTyped)),
          payoutAccount: "0x12",
        }),
        400,
        "payoutAccount",
      );
      expectError(
        // The typed-data builder refuses such a namespace, so the body names it after signing a valid one.
        await post("/providers/register", {
          ...(await reg("coingecko", competitorAcct.address, perCallJson, perCallTyped)),
          namespace: "coin-gecko",
        }),
        400,
        "namespace",
      );
      // Pricing the registry would refuse, named by its field; the typed pricing signed is the JSON's where it can be.
      const badPricing: [json: object, signed: Pricing, field: string][] = [
        [{ model: "PerCall", pricePerCallMicro: "0" }, { ...perCallTyped, pricePerCallMicro: 0n }, "pricing.pricePerCallMicro"],
        [{ model: "PerCall", pricePerCallMicro: "-1" }, perCallTyped, "pricing.pricePerCallMicro"],
        [{ model: "Flat" }, perCallTyped, "pricing.model"],
        [
          {
            model: "Tiered",
            tiers: [
              { upToCalls: "10", priceMicro: "1" },
              { upToCalls: "10", priceMicro: "2" },
            ],
          },
          perCallTyped,
          "pricing.tiers[1].upToCalls",
        ],
        [{ model: "FreePool", poolWeight: 1, pricePerCallMicro: "5" }, perCallTyped, "pricing.pricePerCallMicro"],
      ];
      for (const [json, signed, field] of badPricing) {
        expectError(await post("/providers/register", await reg("newcomer", competitorAcct.address, json, signed)), 400, field);
      }
      expectError(
        await post(
          "/providers/register",
          await reg("newcomer", competitorAcct.address, perCallJson, perCallTyped, { signer: competitorAcct }),
        ),
        401,
        "signature",
      );
      expectError(
        await post("/providers/register", await reg("newcomer", competitorAcct.address, perCallJson, perCallTyped, { chainId: 43113 })),
        401,
        "signature",
      );
      // A nonce ahead of the lane's next one: named (409) when the body carries it, else the signature fails.
      const nonce = await ownerNonce(providerIdOf("newcomer"));
      const stale = await post("/providers/register", {
        ...(await reg("newcomer", competitorAcct.address, perCallJson, perCallTyped, { nonce: nonce + 1n })),
        nonce: (nonce + 1n).toString(),
      });
      expectError(stale, 409, "nonce");
      expect(stale.body.error.message).toContain(`(${nonce})`);
      expectError(
        await post("/providers/register", await reg("newcomer", competitorAcct.address, perCallJson, perCallTyped, { nonce: nonce + 1n })),
        401,
        "signature",
      );
      expectError(
        await post(
          "/providers/register",
          await reg("newcomer", competitorAcct.address, perCallJson, perCallTyped, { deadline: BigInt(now() - 1) }),
        ),
        400,
        "deadline",
      );
      expectError(
        await post("/providers/register", await reg("coingecko", competitorAcct.address, perCallJson, perCallTyped)),
        409,
        "namespace",
      );

      const unknownId = providerIdOf("nobody");
      const deadline = soon();
      const signature = await operator.signTypedData(
        setActiveTypedData(
          { providerId: unknownId, active: false, nonce: await ownerNonce(unknownId), deadline },
          registryTarget(),
        ) as TypedDataDefinition,
      );
      expectError(
        await post("/providers/update", { providerId: unknownId, active: false, deadline: deadline.toString(), signature }),
        404,
        "providerId",
      );
      expectError(
        await post("/providers/update", {
          providerId: unknownId,
          active: false,
          pricing: perCallJson,
          deadline: deadline.toString(),
          signature,
        }),
        400,
        "body",
      );
      expectError(
        await post("/providers/update", { providerId: "0x12", active: false, deadline: deadline.toString(), signature }),
        400,
        "providerId",
      );
    });
  });

  it("logs neither the relayer key nor batch contents", () => {
    const log = readFileSync(join(dir, "ponder.log"), "utf8");
    expect(log).toContain("write routes enabled");
    expect(log.toLowerCase()).not.toContain(RELAYER_KEY.slice(2));
    expect(log.toLowerCase()).not.toContain(first.built.batch.encryptedLines.slice(2, 200).toLowerCase());
  });
});

describe("relayer key and deadline policy", () => {
  it("uses RELAYER_PRIVATE_KEY, anvil's account #8 only on chain 31337, and otherwise keeps the write routes off", () => {
    const key = `0x${"11".repeat(32)}`;
    expect(relayerKey({ RELAYER_PRIVATE_KEY: key }, 43113)).toEqual({ enabled: true, key, source: "env" });
    expect(relayerKey({}, 31337)).toEqual({ enabled: true, key: RELAYER_KEY, source: "anvil" });
    const off = relayerKey({}, 43113);
    expect(off).toMatchObject({ enabled: false, reason: expect.stringContaining("RELAYER_PRIVATE_KEY") });
    const bad = relayerKey({ RELAYER_PRIVATE_KEY: "0xsecretbutmalformed" }, 31337);
    expect(bad.enabled).toBe(false);
    expect(JSON.stringify(bad)).not.toContain("secretbutmalformed");
  });

  it("accepts deadlines a minute to a day ahead", () => {
    const t = 1_800_000_000;
    expect(checkDeadline("deadline", BigInt(t + 3_600), t)).toBe(BigInt(t + 3_600));
    for (const d of [t, t + 59, t + MAX_DEADLINE_LEAD_S + 1]) expect(() => checkDeadline("deadline", BigInt(d), t)).toThrow(ApiInputError);
  });
});

describe("write routes with a malformed relayer key", () => {
  let anvil: Anvil;
  let indexer: RunningIndexer;
  const prover = new Prover();

  beforeAll(async () => {
    anvil = await startAnvil();
    const deployed = await deployForIndexer({ rpcUrl: anvil.rpcUrl, prover });
    // A malformed key turns the write routes off; the read API keeps serving.
    indexer = await startIndexer({
      manifestPath: deployed.manifestPath,
      env: { RPC_URL: anvil.rpcUrl, RELAYER_PRIVATE_KEY: "0x1234" },
      pgliteDir: join(deployed.dir, "pglite"),
      logFile: join(deployed.dir, "ponder.log"),
    });
  });

  afterAll(async () => {
    await indexer?.stop();
    await prover.close();
    await anvil?.stop();
  });

  it("answers 503 on every write route and keeps serving reads", async () => {
    for (const path of ["/providers/register", "/providers/update", "/usage/submit"]) {
      const res = await fetch(`${indexer.url}${path}`, { method: "POST", body: "{}" });
      expect(res.status).toBe(503);
      expect(((await res.json()) as any).error).toEqual({ field: null, message: expect.stringContaining("RELAYER_PRIVATE_KEY") });
    }
    expect((await fetch(`${indexer.url}/audit/totals`)).status).toBe(200);
  });
});
