import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { extname, join, normalize, sep } from "node:path";
import { type Address, getAddress, type Hex, keccak256, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { WEB_BUILD_DIR } from "../src/api/app.js";
import { ANVIL_KEYS, LOCAL_ROLES } from "../src/chain/local.js";
import { PROJECT_ROOT } from "../src/eerc/artifacts.js";
import { addEGCT, type EGCT, encryptElGamal, ZERO_EGCT } from "../src/eerc/elgamal.js";
import { deriveKeyFromWallet, publicKeyOf } from "../src/eerc/keys.js";
import { encryptPCT } from "../src/eerc/pct.js";
import type { UsageCommitmentRow } from "../src/indexer-client/client.js";
import { type EarningsWire, earningsResponse, submitRequest } from "../src/indexer-client/schemas.js";
import { callRecords } from "../src/local/marketplace.js";
import { encodeTag } from "../src/payout/tag.js";
import { buildBatch } from "../src/usage/batch.js";
import { LINES_FORMAT_VERSION } from "../src/usage/lines.js";
import { providerIdOf } from "../src/usage/registry.js";

/**
 * The provider view's data for the web benchmark, built without a chain: indexing a year of
 * batches through the indexer runs at about 4 batches/s, so the benchmark builds the API's answers
 * itself, with the project's own code and real keys. Every usage batch is `buildBatch`'s (a Merkle
 * root over its call records, lines encrypted with `src/usage/lines.ts` to the provider's eERC key,
 * the operator's and the auditor's, padded to 4); every payout is a receiver PCT (`encryptPCT`)
 * whose nonce is the cycle's payout tag; every balance snapshot an EGCT that is the homomorphic sum
 * of the payouts so far, with their PCTs. Block numbers, transaction hashes and timestamps are made
 * up; the answers are shaped exactly as the API sends them and parsed with its schemas
 * (`earningsResponse`, and each commitment with `submitRequest`'s batch) before they are served.
 */

export const PRICE_MICRO = 1_000n;
/** The payout account of "weather": anvil's account #1, a demo account the page can connect. */
export const PROVIDER_INDEX = 1;
const OTHER_INDEX = 2;
const SERVER_INDEX = 3;
const FIRST_BLOCK = 1_000n;
const BLOCKS_PER_BATCH = 10n;
const HOUR_MS = 3_600_000;
/** 2025-01-01T00:00:00Z: the year of hourly batches starts here. */
const START_MS = Date.UTC(2025, 0, 1);

export type WebDataset = {
  account: Address;
  batches: number;
  cycles: number;
  /** What the page must show, from the plaintext the data was built from. */
  expected: { balanceMicro: bigint; pendingMicro: bigint; usageMicro: bigint; billableCalls: bigint; payouts: number };
  earnings: EarningsWire;
  providers: { providerId: Hex; namespace: string; payoutAccount: Address; active: boolean }[];
  commitments: UsageCommitmentRow[];
};

/** JSON with bigints as decimal strings, as the API writes them. */
const wire = <T>(value: unknown): T => JSON.parse(JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v))) as T;
const fakeHash = (what: string): Hex => keccak256(toHex(what));
const weatherCalls = (i: number) => 1 + ((i * 7) % 13);

/**
 * `batches` hourly usage batches of two providers ("weather", paying out to anvil #1, and "maps"),
 * `cycles` payout cycles over all but the last tenth of them, paying "weather" its usage less a 10%
 * fee; the rest is pending.
 */
export async function buildDataset(batches: number, cycles: number, log: (line: string) => void): Promise<WebDataset> {
  const wallet = (i: number) => privateKeyToAccount(ANVIL_KEYS[i]!);
  const provider = wallet(PROVIDER_INDEX);
  const sk = await deriveKeyFromWallet(provider);
  const pk = publicKeyOf(sk);
  const operator = wallet(LOCAL_ROLES.operator);
  const keys = {
    operatorPk: publicKeyOf(await deriveKeyFromWallet(operator)),
    auditorPk: publicKeyOf(await deriveKeyFromWallet(wallet(LOCAL_ROLES.auditor))),
  };
  const otherPk = publicKeyOf(await deriveKeyFromWallet(wallet(OTHER_INDEX)));
  const weather = providerIdOf("weather");
  const maps = providerIdOf("maps");
  const server = wallet(SERVER_INDEX).address;
  const lineKeys = { ...keys, providerPk: (id: Hex) => (id.toLowerCase() === weather ? pk : otherPk) };

  const commitments: WebDataset["commitments"] = [];
  const owedPerBatch: bigint[] = [];
  const started = performance.now();
  for (let i = 0; i < batches; i++) {
    const at = START_MS + i * HOUR_MS;
    const records = [
      ...callRecords("weather", weatherCalls(i), { at: at + 1_000, priceMicro: PRICE_MICRO }),
      ...callRecords("maps", 2, { at: at + 2_000, priceMicro: 500n }),
    ];
    const built = buildBatch({ server, sequence: i + 1, periodStart: at, periodEnd: at + HOUR_MS - 1, records, keys: lineKeys });
    const batch = wire<Omit<WebDataset["commitments"][number], "blockNumber" | "logIndex" | "txHash">>(built.batch);
    submitRequest.shape.batch.parse(batch);
    commitments.push({
      ...batch,
      blockNumber: String(FIRST_BLOCK + BigInt(i) * BLOCKS_PER_BATCH),
      logIndex: 0,
      txHash: fakeHash(`commit ${i}`),
    });
    owedPerBatch.push(BigInt(weatherCalls(i)) * PRICE_MICRO);
    if ((i + 1) % 1000 === 0) log(`web: built ${i + 1}/${batches} usage batches (${Math.round((performance.now() - started) / 1000)} s)`);
  }

  // Cycle c pays the batches through `last(c)`, less the platform's 10%.
  const paidBatches = batches - Math.ceil(batches / 10);
  const last = (c: number) => Math.floor((c * paidBatches) / cycles) - 1;
  const blockOf = (i: number) => FIRST_BLOCK + BigInt(i) * BLOCKS_PER_BATCH;
  const net = (micro: bigint) => micro - micro / 10n;
  let egct: EGCT = ZERO_EGCT;
  let balance = 0n;
  const amountPCTs: { pct: bigint[]; index: bigint }[] = [];
  const balanceHistory: unknown[] = [];
  const receivedTransfers: unknown[] = [];
  for (let c = 1; c <= cycles; c++) {
    let owed = 0n;
    for (let i = last(c - 1) + 1; i <= last(c); i++) owed += owedPerBatch[i]!;
    const amount = net(owed);
    const throughBlock = blockOf(last(c));
    const blockNumber = throughBlock + 5n;
    const txHash = fakeHash(`payout ${c}`);
    const { pct } = encryptPCT(amount, pk, { nonce: encodeTag({ cycle: c, throughBlock, providerId: weather }) });
    receivedTransfers.push({ from: operator.address, tokenId: 1n, blockNumber, txHash, amountPCT: pct });
    egct = addEGCT(egct, encryptElGamal(amount, pk).ct);
    balance += amount;
    amountPCTs.push({ pct, index: BigInt(amountPCTs.length + 1) });
    balanceHistory.push({
      tokenId: 1n,
      blockNumber,
      logIndex: 1,
      timestamp: BigInt(Math.floor((START_MS + (last(c) + 1) * HOUR_MS) / 1000)),
      txHash,
      kind: "transfer_in",
      eGCT: egct,
      nonce: BigInt(c),
      transactionIndex: 0n,
      balancePCT: [0n, 0n, 0n, 0n, 0n, 0n, 0n],
      amountPCTs: [...amountPCTs],
    });
  }
  let pending = 0n;
  for (let i = last(cycles) + 1; i < batches; i++) pending += owedPerBatch[i]!;
  const pendingMicro = net(pending);
  const earnings = wire<EarningsWire>({
    account: provider.address,
    publicKey: pk,
    tokens: [{ tokenId: 1n, tokenAddress: null }],
    balanceHistory,
    receivedTransfers,
    pending: { pct: encryptPCT(pendingMicro, pk).pct, throughBlock: blockOf(batches - 1) },
  });
  earningsResponse.parse(earnings);
  const usageMicro = owedPerBatch.reduce((a, b) => a + b, 0n);
  return {
    account: provider.address,
    batches,
    cycles,
    expected: { balanceMicro: balance, pendingMicro, usageMicro, billableCalls: usageMicro / PRICE_MICRO, payouts: cycles },
    earnings,
    providers: [
      { providerId: maps, namespace: "maps", payoutAccount: wallet(OTHER_INDEX).address, active: true },
      { providerId: weather, namespace: "weather", payoutAccount: provider.address, active: true },
    ],
    commitments,
  };
}

/**
 * The dataset, built once per shape (and encryption code) and kept in the system's temporary folder (building a year of
 * encrypted batches takes a few minutes); `fresh` builds it again.
 */
export async function dataset(
  batches: number,
  cycles: number,
  fresh: boolean,
  log: (line: string) => void,
): Promise<WebDataset & { source: string }> {
  const dir = join(tmpdir(), "backendshield-bench-web");
  // The encryption code's own text is part of the key: a change to it builds the data again.
  const code = ENCRYPTION_SOURCES.map((f) => readFileSync(join(PROJECT_ROOT, f), "utf8")).join("\0");
  const shape = createHash("sha256")
    .update(`v1|${LINES_FORMAT_VERSION}|${batches}|${cycles}|${ANVIL_KEYS[PROVIDER_INDEX]}|${code}`)
    .digest("hex")
    .slice(0, 16);
  const file = join(dir, `${shape}.json`);
  if (!fresh && existsSync(file)) {
    const kept = JSON.parse(readFileSync(file, "utf8")) as Omit<WebDataset, "expected"> & {
      builtAt: string;
      expected: Record<keyof WebDataset["expected"], string | number>;
    };
    const expected = Object.fromEntries(
      Object.entries(kept.expected).map(([k, v]) => [k, k === "payouts" ? v : BigInt(v)]),
    ) as WebDataset["expected"];
    earningsResponse.parse(kept.earnings);
    return { ...kept, expected, source: `built by this benchmark on ${kept.builtAt}, kept in ${file}` };
  }
  const started = performance.now();
  const built = await buildDataset(batches, cycles, log);
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, JSON.stringify({ ...wire<object>(built), builtAt: new Date().toISOString() }));
  return { ...built, source: `built in this run in ${Math.round((performance.now() - started) / 1000)} s` };
}

/** The modules the data's ciphertexts come from. */
const ENCRYPTION_SOURCES = [
  "src/usage/lines.ts",
  "src/usage/batch.ts",
  "src/usage/record.ts",
  "src/eerc/pct.ts",
  "src/eerc/elgamal.ts",
  "src/payout/tag.ts",
];

// ------------------------------------------------------------------------------------- server

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

export type DataServer = { url: string; unknown: string[]; close(): Promise<void> };

/**
 * The routes the provider view calls, answered from `data`: `GET /accounts/:address/earnings`,
 * and GraphQL's `providers` and `usageCommitments` (cursor pages, as Ponder pages them),
 * `auditorChanges` and `providerChanges` (the role check); the dashboard's build at `/app/`. Any
 * other request is answered 404 and listed in `unknown`.
 */
export async function serveDataset(data: WebDataset): Promise<DataServer> {
  const unknown: string[] = [];
  const earnings = JSON.stringify(data.earnings);
  const auditor = privateKeyToAccount(ANVIL_KEYS[LOCAL_ROLES.auditor]!).address;
  const send = (res: ServerResponse, status: number, body: string, type = "application/json") => {
    res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
    res.end(body);
  };
  const page = <T>(rows: readonly T[], after: string | null, limit: number) => {
    const from = after === null ? 0 : Number(Buffer.from(after, "base64").toString());
    const items = rows.slice(from, from + limit);
    const next = from + items.length;
    return { items, pageInfo: { hasNextPage: next < rows.length, endCursor: Buffer.from(String(next)).toString("base64") } };
  };
  const graphql = (body: { query?: string; variables?: { after?: string | null; limit?: number } }) => {
    const query = body.query ?? "";
    const field = /\{\s*(\w+)\s*\(/.exec(query)?.[1];
    const limit = Math.min(body.variables?.limit ?? 50, 1_000);
    const after = body.variables?.after ?? null;
    if (field === "providers") return { providers: page(data.providers, after, limit) };
    if (field === "usageCommitments") return { usageCommitments: page(data.commitments, after, limit) };
    if (field === "auditorChanges") return { auditorChanges: { items: [{ newAuditor: auditor.toLowerCase() }] } };
    // The registry's first change: a transaction the RPC does not know, so the page finds no owner (the account is a provider).
    if (field === "providerChanges") return { providerChanges: { items: [{ txHash: fakeHash("registry"), logIndex: 0 }] } };
    return null;
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname;
    if (req.method === "GET" && path.startsWith("/app/")) {
      const rel = normalize(path.slice("/app/".length) || "index.html");
      const file = join(WEB_BUILD_DIR, rel);
      if (rel.startsWith("..") || !file.startsWith(WEB_BUILD_DIR + sep) || !existsSync(file)) return send(res, 404, "{}");
      return send(res, 200, readFileSync(file, "utf8"), CONTENT_TYPES[extname(file)] ?? "application/octet-stream");
    }
    const account = /^\/accounts\/(0x[0-9a-fA-F]{40})\/earnings$/.exec(path)?.[1];
    if (req.method === "GET" && account) {
      return getAddress(account) === data.account ? send(res, 200, earnings) : send(res, 404, '{"error":"unknown account"}');
    }
    if (req.method === "POST" && path === "/graphql") {
      let text = "";
      for await (const chunk of req) text += chunk;
      const answer = graphql(JSON.parse(text));
      if (answer) return send(res, 200, JSON.stringify({ data: answer }));
    }
    // The browser asks for a favicon by itself; anything else the page asks for must be served.
    if (path !== "/favicon.ico") unknown.push(`${req.method} ${path}`);
    send(res, 404, '{"error":"not served by the benchmark"}');
  };
  const server: Server = createServer(
    (req, res) => void handle(req, res).catch((e) => send(res, 500, JSON.stringify({ error: String(e) }))),
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    unknown,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
