import { randomBytes } from "node:crypto";
import { join } from "node:path";
import pg from "pg";
import { type Hex, parseEventLogs } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EncryptedERCAbi } from "../abis/EncryptedERCAbi.js";
import { UsageLedgerAbi } from "../abis/UsageLedgerAbi.js";
import { type Anvil, startAnvil } from "../src/chain/anvil.js";
import { type ChainClients, connectChain } from "../src/chain/clients.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import type { DeploymentManifest } from "../src/deployment/manifest.js";
import type { EercClient } from "../src/eerc/client.js";
import { Prover } from "../src/eerc/prover.js";
import { type RunningIndexer, startIndexer } from "../src/indexer/process.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { submitRequestBody } from "../src/meter/submit.js";
import { batchHash, batchTypedData, buildBatch, decodeVersionedLines } from "../src/usage/index.js";
import { connectClient, deployForIndexer, expectHistoryMatchesChain, getJson, mintUsdc } from "./indexer-helpers.js";
import { callRecord, randomLineKeys } from "./lines-helpers.js";

const ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres";

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

describe("indexer on Postgres: killed mid-stream and restarted on the same schema; a `ponder serve` replica beside it", () => {
  let anvil: Anvil;
  let chain: ChainClients;
  const prover = new Prover();
  let manifest: DeploymentManifest;
  let manifestPath: string;
  let dir: string;
  let alice: EercClient, bob: EercClient;
  const database = `bs_test_${randomBytes(6).toString("hex")}`;
  const databaseUrl = `postgresql://postgres@127.0.0.1:5432/${database}`;
  const schema = "bs_indexer";
  const viewsSchema = "bs_api";
  const running: RunningIndexer[] = [];
  let indexer: RunningIndexer;
  let replica: RunningIndexer;

  beforeAll(async () => {
    await admin((c) => c.query(`CREATE DATABASE ${database}`));
    anvil = await startAnvil();
    chain = await connectChain(anvil.rpcUrl);
    ({ manifest, manifestPath, dir } = await deployForIndexer({ rpcUrl: anvil.rpcUrl, prover }));
    [alice, bob] = await Promise.all([1, 2].map((i) => connectClient(chain, manifest, prover, i)));
    await alice.register();
    await bob.register();
    await mintUsdc(chain, manifest, alice.address, 10_000_000n);
    await mintUsdc(chain, manifest, bob.address, 10_000_000n);
    await alice.deposit({ token: manifest.contracts.token, amount: 5_000_000n });
  });

  afterAll(async () => {
    for (const r of running) await r.stop();
    await prover.close();
    await anvil?.stop();
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
  });

  it("loses and doubles nothing; a `ponder serve` replica reading the views schema answers the same", async () => {
    const start = (extra: { viewsSchema?: string } = {}) =>
      startIndexer({ manifestPath, env: { RPC_URL: anvil.rpcUrl }, databaseUrl, schema, logFile: join(dir, "ponder.log"), ...extra }).then(
        (r) => {
          running.push(r);
          return r;
        },
      );
    const first = await start();

    // Events keep coming while the indexer is killed and restarted: deposits from bob, and
    // transfers from alice (each proven, then mined).
    let stopping = false;
    const deposits: Hex[] = [];
    const transfers: Hex[] = [];
    const depositLoop = (async () => {
      for (let i = 1; !stopping; i++) {
        deposits.push((await bob.deposit({ token: manifest.contracts.token, amount: BigInt(i) })).transactionHash);
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    const transferLoop = (async () => {
      for (let i = 1; !stopping && i <= 6; i++) {
        transfers.push((await alice.transfer({ to: bob.address, amount: BigInt(i), tokenId: 1n })).transactionHash);
      }
    })();

    await new Promise((r) => setTimeout(r, 2_500));
    first.kill();
    expect(await first.exited).toBe(null);
    const killedAt = await chain.publicClient.getBlockNumber({ cacheTime: 0 });

    // The schema stays locked until the dead process's heartbeat expires; then crash recovery
    // resumes from the last checkpoint.
    const second = await start({ viewsSchema });
    indexer = second;
    stopping = true;
    await Promise.all([depositLoop, transferLoop]);
    // Uncached: the block number the last receipt was polled with may be the one before it.
    const last = await chain.publicClient.getBlockNumber({ cacheTime: 0 });
    expect(last).toBeGreaterThan(killedAt);
    await new IndexerClient(second.url).waitForBlock(last);
    expect(second.recentOutput()).toMatch(/crash recovery/i);

    const logs = parseEventLogs({
      abi: EncryptedERCAbi,
      logs: await chain.publicClient.getLogs({
        address: manifest.contracts.encryptedERC,
        fromBlock: BigInt(manifest.startBlock),
        toBlock: last,
      }),
    });
    const eventCount = (name: string) => logs.filter((l) => l.eventName === name).length;
    // Pages as the API's answer-size limit allows (the client shrinks a page the API refuses), and counts.
    const indexed = new IndexerClient(second.url);
    const read = async () => ({
      depositHashes: (await indexed.all<{ txHash: string }>("deposits", "txHash", "id")).map((d) => d.txHash).sort(),
      transferHashes: (await indexed.all<{ txHash: string }>("privateTransfers", "txHash", "id")).map((t) => t.txHash),
      data: await indexed.query<any>(
        `{ deposits(limit: 1) { totalCount } privateTransfers(limit: 1) { totalCount }
           balanceHistorys(limit: 1) { totalCount } amountPcts(limit: 1) { totalCount } }`,
      ),
    });
    // The head block is reported once it is reached; the rows of the blocks replayed after crash
    // recovery may be a moment behind it, and the lists and counts are separate queries, so one
    // read can see the rows before they settle and the next after. Lost or doubled rows never
    // settle: the checks below fail.
    const settled = (s: Awaited<ReturnType<typeof read>>) =>
      s.data.deposits.totalCount === eventCount("Deposit") &&
      s.data.privateTransfers.totalCount === eventCount("PrivateTransfer") &&
      s.depositHashes.length === eventCount("Deposit") &&
      s.transferHashes.length === eventCount("PrivateTransfer");
    let state = await read();
    for (const deadline = Date.now() + 30_000; Date.now() < deadline && !settled(state); ) {
      await new Promise((r) => setTimeout(r, 500));
      state = await read();
    }
    const { depositHashes, transferHashes, data } = state;
    expect(depositHashes).toEqual([...new Set(depositHashes)]);
    expect(data.deposits.totalCount).toBe(eventCount("Deposit"));
    expect(depositHashes).toHaveLength(eventCount("Deposit"));
    expect(depositHashes).toEqual(expect.arrayContaining(deposits));
    expect(data.privateTransfers.totalCount).toBe(eventCount("PrivateTransfer"));
    expect(transferHashes).toEqual(expect.arrayContaining(transfers));
    // One history row per balance change: a deposit changes one balance, a transfer two.
    expect(data.balanceHistorys.totalCount).toBe(eventCount("Deposit") + 2 * eventCount("PrivateTransfer"));
    expect(data.amountPcts.totalCount).toBe(eventCount("Deposit") + eventCount("PrivateTransfer"));

    for (const client of [alice, bob]) await expectHistoryMatchesChain({ chain, manifest, indexerUrl: second.url, client });

    // Its own relayer key: two processes never share a nonce lane.
    replica = await startIndexer({
      command: "serve",
      manifestPath,
      env: { RPC_URL: anvil.rpcUrl, RELAYER_PRIVATE_KEY: ANVIL_KEYS[7] },
      databaseUrl,
      schema: viewsSchema,
    });
    running.push(replica);
    for (const path of [`/providers/${bob.address}/earnings`, "/audit/totals"]) {
      const [a, b] = await Promise.all([getJson(`${second.url}${path}`), getJson(`${replica.url}${path}`)]);
      expect(b.status).toBe(200);
      expect(b.body).toEqual(a.body);
    }
  });

  it("the replica takes usage writes: it relays from its own key, the indexing process indexes the commit, both serve it", async () => {
    const server = privateKeyToAccount(ANVIL_KEYS[6]);
    const ledger = manifest.contracts.usageLedger;
    const owner = chain.walletFor(privateKeyToAccount(ANVIL_KEYS[0]));
    await chain.publicClient.waitForTransactionReceipt({
      hash: await owner.writeContract({
        address: ledger,
        abi: UsageLedgerAbi,
        functionName: "setServer",
        args: [server.address, true],
      } as never),
    });
    const keys = randomLineKeys();
    const records = [1, 2, 3].map((i) => callRecord(i));
    const { batch } = buildBatch({ server: server.address, sequence: 1, periodStart: 1_000, periodEnd: 2_000, records, keys });
    const deadline = BigInt(Math.floor(Date.now() / 1000) + 600);
    const signature = await server.signTypedData(batchTypedData(batch, deadline, { chainId: chain.chain.id, ledger }));
    const body = JSON.stringify(submitRequestBody(batch, deadline, signature, records));
    const post = (url: string) => fetch(`${url}/usage/submit`, { method: "POST", headers: { "content-type": "application/json" }, body });

    const res = await post(replica.url);
    const answer = (await res.json()) as { batchId: Hex; txHash: Hex };
    expect(res.status, JSON.stringify(answer)).toBe(200);
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash: answer.txHash });
    expect(receipt.status).toBe("success");
    expect(receipt.from.toLowerCase()).toBe(privateKeyToAccount(ANVIL_KEYS[7]).address.toLowerCase());

    await new IndexerClient(indexer.url).waitForBlock(receipt.blockNumber);
    const query = `{ usageCommitments(where: { batchId: "${batch.batchId}" }) { items { server batchHash lineCount txHash } } }`;
    const expected = [
      {
        server: server.address.toLowerCase(),
        batchHash: batchHash(batch),
        lineCount: decodeVersionedLines(batch.encryptedLines).lines.length,
        txHash: answer.txHash,
      },
    ];
    for (const url of [indexer.url, replica.url]) {
      const data = await new IndexerClient(url).query<{ usageCommitments: { items: unknown[] } }>(query);
      expect(data.usageCommitments.items, url).toEqual(expected);
    }
    // The same batch sent to the indexing process: idempotency rests on the chain, not on one process's memory.
    const again = await post(indexer.url);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(answer);
  });
});
