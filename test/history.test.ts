import { createServer, type Server } from "node:http";
import type { Address } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../src/chain/anvil.js";
import { KeyMismatchError } from "../src/eerc/errors.js";
import { publicKeyOf } from "../src/eerc/keys.js";
import { auditTotals, decryptHistory } from "../src/history/decrypt.js";
import { HistoryRowCorruptError, ReceivedTransferCorruptError, UnknownAccountError } from "../src/history/errors.js";
import { ApiHttpError, ApiResponseError, ApiUnreachableError } from "../src/http/errors.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { parseAuditTotals, parseEarnings } from "../src/indexer-client/schemas.js";
import { periodLabel } from "../src/usage/period.js";
import { expectSameShape, type Recording, recorded } from "./api-fixtures.js";
import { buildAudit, buildEarnings, type Step, txHash } from "./history-fixtures.js";

const PROVIDER: Address = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const PAYER: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const USDC: Address = "0x5425890298aed601595a70AB815c96711a31Bc65";
const AUDITOR: Address = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720";
const OLD_AUDITOR: Address = "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955";

const providerSk = 1234567890123456789n;
const auditorSk = 987654321987654321n;
const oldAuditorSk = 555555555555555555n;
const competitorSk = 424242424242424242n;

// Token 1: credits, a spend that folds them into balancePCT, then credits after the spend.
const steps: Step[] = [
  { tokenId: 1n, kind: "deposit", amount: 5_000_000n },
  { tokenId: 1n, kind: "transfer_in", amount: 1_234_567n, from: PAYER },
  { tokenId: 2n, kind: "transfer_in", amount: 42n, from: PAYER },
  { tokenId: 1n, kind: "transfer_out", amount: 2_000_000n },
  { tokenId: 1n, kind: "transfer_in", amount: 1n, from: PAYER },
  { tokenId: 1n, kind: "transfer_in", amount: 333n, from: PAYER },
  { tokenId: 1n, kind: "withdraw", amount: 100n },
  { tokenId: 2n, kind: "transfer_in", amount: 8n, from: PAYER },
];

describe("decryptHistory", () => {
  const { json, expected } = buildEarnings(PROVIDER, publicKeyOf(providerSk), steps, [
    { tokenId: 1n, tokenAddress: USDC },
    { tokenId: 2n, tokenAddress: null },
  ]);

  it("decrypts every row of every token, including credits after a spend", () => {
    const h = decryptHistory(parseEarnings(json, "test"), providerSk);
    expect(h.tokens.map((t) => t.tokenId)).toEqual([1n, 2n]);
    const [t1, t2] = h.tokens;
    expect(t1!.tokenAddress).toBe(USDC);
    expect(t1!.rows.map((r) => r.balanceMicro)).toEqual([5_000_000n, 6_234_567n, 4_234_567n, 4_234_568n, 4_234_901n, 4_234_801n]);
    expect(t1!.rows.map((r) => r.deltaMicro)).toEqual([5_000_000n, 1_234_567n, -2_000_000n, 1n, 333n, -100n]);
    expect(t1!.rows.map((r) => r.kind)).toEqual(["deposit", "transfer_in", "transfer_out", "transfer_in", "transfer_in", "withdraw"]);
    expect(t1!.balanceMicro).toBe(4_234_801n);
    expect(t2!.rows.map((r) => r.balanceMicro)).toEqual([42n, 50n]);
    expect(t2!.balanceMicro).toBe(50n);
    expect(h.tokens.flatMap((t) => t.rows.map((r) => r.balanceMicro)).sort()).toEqual([...expected].sort());
  });

  it("decrypts incoming transfers per token with exact totals", () => {
    const h = decryptHistory(parseEarnings(json, "test"), providerSk);
    const [t1, t2] = h.tokens;
    expect(t1!.received.map((r) => r.amountMicro)).toEqual([1_234_567n, 1n, 333n]);
    expect(t1!.receivedTotalMicro).toBe(1_234_901n);
    expect(t1!.received[0]).toMatchObject({ from: PAYER, blockNumber: 101n, txHash: txHash(1) });
    expect(t2!.receivedTotalMicro).toBe(50n);
    expect(h.unresolved).toEqual([]);
  });

  const corruptError = (body: unknown): HistoryRowCorruptError => {
    try {
      decryptHistory(parseEarnings(body, "test"), providerSk);
    } catch (e) {
      expect(e).toBeInstanceOf(HistoryRowCorruptError);
      return e as HistoryRowCorruptError;
    }
    throw new Error("expected HistoryRowCorruptError");
  };

  it("names the corrupted row: a tampered amountPCT", () => {
    const bad = structuredClone(json) as typeof json & { balanceHistory: { amountPCTs: { pct: string[] }[] }[] };
    const row = bad.balanceHistory[4]!; // token 1, second credit after the spend
    row.amountPCTs[0]!.pct[1] = (BigInt(row.amountPCTs[0]!.pct[1]!) + 1n).toString();
    const e = corruptError(bad);
    expect(e.row).toMatchObject({ tokenId: 1n, blockNumber: 104n, txHash: txHash(4), kind: "transfer_in" });
    expect(e.message).toContain("block 104");
    expect(e.message).toContain(txHash(4));
    expect(e.message).toContain("pct-decryption");
  });

  it("names the corrupted row: an EGCT that disagrees with the PCTs", () => {
    const bad = structuredClone(json) as typeof json & { balanceHistory: { eGCT: unknown }[] };
    bad.balanceHistory[3]!.eGCT = structuredClone(bad.balanceHistory[1]!.eGCT);
    const e = corruptError(bad);
    expect(e.row).toMatchObject({ blockNumber: 103n, kind: "transfer_out" });
    expect(e.message).toContain("egct-mismatch");
  });

  it("rejects a key that is not the account's (KeyMismatchError) before decrypting", () => {
    expect(() => decryptHistory(parseEarnings(json, "test"), competitorSk)).toThrow(KeyMismatchError);
  });

  it("names an incoming transfer whose PCT does not decrypt; lists one without a PCT as unresolved", () => {
    const bad = structuredClone(json) as typeof json & { receivedTransfers: { amountPCT: string[] | null }[] };
    bad.receivedTransfers[2]!.amountPCT![0] = "7";
    expect(() => decryptHistory(parseEarnings(bad, "test"), providerSk)).toThrow(ReceivedTransferCorruptError);
    const missing = structuredClone(json) as typeof json & { receivedTransfers: { amountPCT: string[] | null }[] };
    missing.receivedTransfers[0]!.amountPCT = null;
    const h = decryptHistory(parseEarnings(missing, "test"), providerSk);
    expect(h.unresolved).toEqual([{ from: PAYER, tokenId: 1n, blockNumber: 101n, txHash: txHash(1) }]);
    expect(h.tokens[0]!.receivedTotalMicro).toBe(334n);
  });

  it("rejects malformed shapes with the offending path", () => {
    const bad = structuredClone(json) as Record<string, unknown> & { balanceHistory: Record<string, unknown>[] };
    bad.balanceHistory[2]!.balancePCT = ["1", "2"];
    expect(() => parseEarnings(bad, "test")).toThrow(/balanceHistory\[2\]\.balancePCT must have 7 elements/);
    const badKind = structuredClone(json) as Record<string, unknown> & { balanceHistory: Record<string, unknown>[] };
    badKind.balanceHistory[0]!.kind = "gift";
    expect(() => parseEarnings(badKind, "test")).toThrow(ApiResponseError);
    expect(() => parseEarnings(badKind, "test")).toThrow(/balanceHistory\[0\]\.kind must be one of/);
    expect(() => parseEarnings({ ...json, account: "0x12" }, "test")).toThrow(/account must be a 0x-prefixed 20-byte hex address/);
    expect(() => parseEarnings({ ...json, publicKey: [1.5, 2] }, "test")).toThrow(/publicKey\[0\]/);
  });
});

describe("auditTotals", () => {
  const auditorPk = publicKeyOf(auditorSk);
  const oldPk = publicKeyOf(oldAuditorSk);
  const body = buildAudit(AUDITOR, auditorPk, [
    { period: "2026-11-23", tokenId: 1n, kind: "transfer", amount: 1_000_000n, to: oldPk, auditorAddress: OLD_AUDITOR },
    { period: "2026-11-23", tokenId: 1n, kind: "transfer", amount: 250_000n, to: auditorPk, auditorAddress: AUDITOR },
    { period: "2026-11-24", tokenId: 1n, kind: "transfer", amount: 1n, to: auditorPk, auditorAddress: AUDITOR },
    { period: "2026-11-24", tokenId: 1n, kind: "transfer", amount: 1_234_567n, to: auditorPk, auditorAddress: AUDITOR },
    { period: "2026-11-24", tokenId: 1n, kind: "withdraw", amount: 500_000n, to: auditorPk, auditorAddress: AUDITOR },
    { period: "2026-11-24", tokenId: 2n, kind: "transfer", amount: 7n, to: auditorPk, auditorAddress: AUDITOR },
    { period: "2026-11-24", tokenId: 0n, kind: "mint", amount: 9_000n, to: auditorPk, auditorAddress: AUDITOR },
    { period: "2026-11-24", tokenId: 0n, kind: "burn", amount: 1_000n, to: auditorPk, auditorAddress: AUDITOR },
  ]);

  it("sums each kind per (period, token) and per token, exactly", () => {
    const r = auditTotals(parseAuditTotals(body, "test"), auditorSk);
    expect(r.keyIsCurrentAuditor).toBe(true);
    expect(r.periods.map((p) => [p.period, p.tokenId])).toEqual([
      ["2026-11-23", 1n],
      ["2026-11-24", 0n],
      ["2026-11-24", 1n],
      ["2026-11-24", 2n],
    ]);
    const day24t1 = r.periods[2]!;
    expect(day24t1.byKind.transfer).toEqual({ entries: 2, decrypted: 2, undecryptable: 0, amountMicro: 1_234_568n });
    expect(day24t1.byKind.withdraw).toEqual({ entries: 1, decrypted: 1, undecryptable: 0, amountMicro: 500_000n });
    expect(day24t1.amountMicro).toBe(1_734_568n);
    const t0 = r.tokens.find((t) => t.tokenId === 0n)!;
    expect(t0.byKind.mint.amountMicro).toBe(9_000n);
    expect(t0.byKind.burn.amountMicro).toBe(1_000n);
    const t1 = r.tokens.find((t) => t.tokenId === 1n)!;
    expect(t1.byKind.transfer).toEqual({ entries: 4, decrypted: 3, undecryptable: 1, amountMicro: 1_484_568n });
    expect(t1.entries).toBe(5);
  });

  it("counts an entry made under a previous auditor's key as undecryptable and lists it", () => {
    const r = auditTotals(parseAuditTotals(body, "test"), auditorSk);
    expect(r.periods[0]!.byKind.transfer).toEqual({ entries: 2, decrypted: 1, undecryptable: 1, amountMicro: 250_000n });
    expect(r.undecryptable).toHaveLength(1);
    expect(r.undecryptable[0]).toMatchObject({
      period: "2026-11-23",
      tokenId: 1n,
      kind: "transfer",
      auditorAddress: OLD_AUDITOR,
      txHash: txHash(1000),
    });
    // The previous auditor reads exactly its own entry and nothing else.
    const old = auditTotals(parseAuditTotals(body, "test"), oldAuditorSk);
    expect(old.keyIsCurrentAuditor).toBe(false);
    expect(old.tokens.reduce((s, t) => s + t.amountMicro, 0n)).toBe(1_000_000n);
    expect(old.undecryptable).toHaveLength(7);
  });

  it("a competitor's key decrypts nothing; every entry is still counted", () => {
    const r = auditTotals(parseAuditTotals(body, "test"), competitorSk);
    const all = r.tokens.reduce((s, t) => s + t.entries, 0);
    expect(all).toBe(8);
    expect(r.undecryptable).toHaveLength(8);
    expect(r.tokens.every((t) => t.decrypted === 0 && t.amountMicro === 0n)).toBe(true);
  });

  it("merges duplicate (period, token) groups and handles an empty response", () => {
    const dup = { ...body, periods: [...body.periods, body.periods[0]!] };
    const r = auditTotals(parseAuditTotals(dup, "test"), auditorSk);
    expect(r.periods[0]!.entries).toBe(4);
    const empty = auditTotals(parseAuditTotals({ auditor: null, auditorPublicKey: null, periods: [] }, "test"), auditorSk);
    expect(empty).toMatchObject({ auditor: null, keyIsCurrentAuditor: false, periods: [], tokens: [], undecryptable: [] });
  });

  it("period keys are UTC days and months", () => {
    expect(periodLabel(1_764_028_799n, "day")).toBe("2025-11-24");
    expect(periodLabel(1_764_028_800n, "day")).toBe("2025-11-25");
    expect(periodLabel(1_764_028_800n, "month")).toBe("2025-11");
  });
});

describe("the real server's answers (recorded in test/fixtures/api)", () => {
  const truth = recorded("recording.json") as Recording;
  const earnings = recorded("provider-earnings.json");
  const audit = recorded("audit-totals.json");

  it("decrypt with the provider's key to the balances the chain held, and the pending amount", () => {
    const h = decryptHistory(parseEarnings(earnings, "recorded"), BigInt(truth.providerSk));
    expect(h.tokens.flatMap((t) => t.rows.map((r) => ({ kind: r.kind, balanceMicro: r.balanceMicro.toString() })))).toEqual(truth.rows);
    expect(h.pending?.amountMicro.toString()).toBe(truth.pendingMicro);
  });

  it("decrypt with the auditor's key to the totals and cycles the chain recorded", () => {
    const r = auditTotals(parseAuditTotals(audit, "recorded"), BigInt(truth.auditorSk));
    expect(r.keyIsCurrentAuditor).toBe(true);
    const [token] = r.tokens;
    expect({ transfer: token!.byKind.transfer.amountMicro.toString(), withdraw: token!.byKind.withdraw.amountMicro.toString() }).toEqual(
      truth.audit,
    );
    expect(r.cycles?.map((c) => ({ cycle: c.cycle, totalMicro: c.totalMicro.toString() }))).toEqual(truth.cycles);
  });

  it("the shape check tells a decimal from a number and a missing field from a present one", () => {
    expect(() => expectSameShape({ blockNumber: 1 }, { blockNumber: "1" })).toThrow();
    expect(() => expectSameShape({ a: "1" }, { a: "1", pending: null }, { nullable: true })).toThrow();
    expect(() => expectSameShape({ rows: [{ txHash: "0x12" }] }, { rows: [{ txHash: `0x${"ab".repeat(32)}` }] })).toThrow();
    expectSameShape({ pending: null, rows: [] }, { pending: { pct: ["1"] }, rows: [{ a: "1" }] }, { nullable: true });
  });

  it("have the shape of the hand-built bodies above, so those stand for the server", () => {
    const built = buildEarnings(PROVIDER, publicKeyOf(providerSk), steps, [{ tokenId: 1n, tokenAddress: USDC }]).json;
    expectSameShape(built, earnings, { nullable: true });
    expectSameShape(
      buildAudit(AUDITOR, publicKeyOf(auditorSk), [
        { period: "2026-11-24", tokenId: 1n, kind: "transfer", amount: 1n, to: publicKeyOf(auditorSk), auditorAddress: AUDITOR },
      ]),
      audit,
      { nullable: true },
    );
  });
});

describe("IndexerClient against a local HTTP server", () => {
  let server: Server;
  let base: string;
  const seen: string[] = [];
  const earningsBody = buildEarnings(PROVIDER, publicKeyOf(providerSk), steps.slice(0, 2), [{ tokenId: 1n, tokenAddress: USDC }]).json;
  const auditBody = buildAudit(AUDITOR, publicKeyOf(auditorSk), []);

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(req.url!);
      const url = new URL(req.url!, "http://x");
      const send = (status: number, body: string, type = "application/json") => {
        res.writeHead(status, { "content-type": type });
        res.end(body);
      };
      const m = /^\/prefix\/accounts\/([^/]+)\/earnings$/.exec(url.pathname);
      if (m) {
        const who = m[1]!.toLowerCase();
        if (who === PROVIDER.toLowerCase()) return send(200, JSON.stringify(earningsBody));
        if (who === PAYER.toLowerCase())
          return send(404, JSON.stringify({ error: { field: "address", message: `no registered account ${PAYER}` } }));
        if (who === AUDITOR.toLowerCase()) return send(500, JSON.stringify({ error: { message: "database is restarting" } }));
        if (who === OLD_AUDITOR.toLowerCase()) return send(200, "{ this is not json");
        if (who === USDC.toLowerCase()) return send(200, JSON.stringify({ ...earningsBody, balanceHistory: "nope" }));
        return send(400, JSON.stringify({ error: { field: "address", message: "must be a 0x-prefixed 20-byte hex address" } }));
      }
      if (url.pathname === "/prefix/audit/totals") {
        if (url.searchParams.get("period") === "month") return send(502, "<html><body>Bad Gateway</body></html>", "text/html");
        return send(200, JSON.stringify(auditBody));
      }
      if (url.pathname === "/slow/audit/totals") return; // never answers
      send(404, "Not Found", "text/plain");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it("fetches and parses both endpoints under a path prefix, passing tokenId and period", async () => {
    const client = new IndexerClient(`${base}/prefix`);
    const e = await client.earnings(PROVIDER, { tokenId: 1n });
    expect(e.account).toBe(PROVIDER);
    expect(decryptHistory(e, providerSk).tokens[0]!.balanceMicro).toBe(6_234_567n);
    const a = await client.auditTotals({ period: "day" });
    expect(a.auditor).toBe(AUDITOR);
    expect(seen).toContain(`/prefix/accounts/${PROVIDER}/earnings?tokenId=1`);
    expect(seen).toContain("/prefix/audit/totals?period=day");
  });

  it("404 is UnknownAccountError naming the next step", async () => {
    const err = await new IndexerClient(`${base}/prefix/`).earnings(PAYER).catch((e) => e);
    expect(err).toBeInstanceOf(UnknownAccountError);
    expect(err.account).toBe(PAYER);
    expect(err.message).toBe(
      `account ${PAYER} has no eERC registration known to the API: register it first with "npm run cli -- register --rpc URL" and its wallet key`,
    );
  });

  it("4xx/5xx carry status, field and the server's message", async () => {
    const client = new IndexerClient(`${base}/prefix`);
    const e500 = await client.earnings(AUDITOR).catch((e) => e);
    expect(e500).toBeInstanceOf(ApiHttpError);
    expect(e500).toMatchObject({ status: 500, serverMessage: "database is restarting" });
    const e400 = await client.earnings("0x000000000000000000000000000000000000dEaD").catch((e) => e);
    expect(e400).toMatchObject({ status: 400, field: "address" });
    expect(e400.message).toContain("address: must be a 0x-prefixed");
    const e502 = await client.auditTotals({ period: "month" }).catch((e) => e);
    expect(e502).toMatchObject({ status: 502, serverMessage: "<html><body>Bad Gateway</body></html>" });
  });

  it("garbage and wrong shapes are ApiResponseError", async () => {
    const client = new IndexerClient(`${base}/prefix`);
    const garbage = await client.earnings(OLD_AUDITOR).catch((e) => e);
    expect(garbage).toBeInstanceOf(ApiResponseError);
    expect(garbage.message).toMatch(/not JSON/);
    const shape = await client.earnings(USDC).catch((e) => e);
    expect(shape).toBeInstanceOf(ApiResponseError);
    expect(shape.message).toMatch(/balanceHistory is not an array/);
  });

  it("a closed port is ApiUnreachableError (connection refused); a silent server times out", async () => {
    const closed = await freePort();
    const refused = await new IndexerClient(`http://127.0.0.1:${closed}`).auditTotals().catch((e) => e);
    expect(refused).toBeInstanceOf(ApiUnreachableError);
    expect(refused.message).toMatch(/connection refused/);
    const t0 = Date.now();
    const slow = await new IndexerClient(`${base}/slow`, { timeoutMs: 300 }).auditTotals().catch((e) => e);
    expect(slow).toBeInstanceOf(ApiUnreachableError);
    expect(slow.message).toMatch(/no answer within 300 ms/);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it("rejects a base URL that is not http(s)", () => {
    expect(() => new IndexerClient("ftp://example.com")).toThrow(/http/);
    expect(() => new IndexerClient("not a url")).toThrow(/not a URL/);
  });
});
