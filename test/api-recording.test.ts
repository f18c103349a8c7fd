import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANVIL_KEYS, LOCAL_ROLES } from "../src/chain/local.js";
import { deriveKeyFromWallet } from "../src/eerc/keys.js";
import { auditTotals, decryptHistory } from "../src/history/decrypt.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { parseAuditTotals, parseEarnings } from "../src/indexer-client/schemas.js";
import { callRecords, commitRecords, mintUsdc } from "../src/local/marketplace.js";
import { type LocalWorld, localWorld } from "../src/local/world.js";
import { perCall } from "../src/usage/pricing.js";
import { expectSameShape, FIXTURES, type Recording, recorded } from "./api-fixtures.js";

// The API's JSON as the real server answers it, recorded into test/fixtures/api/ for the unit
// tests (`UPDATE_API_FIXTURES=1 npx vitest run test/api-recording.test.ts` re-records it). Without
// that variable, this test fails when the server's answers no longer have the recorded shape.

const UPDATE = process.env.UPDATE_API_FIXTURES === "1";

let w: LocalWorld;
let live: { earnings: unknown; audit: unknown; recording: Recording };

beforeAll(async () => {
  // The API reads with the operator's eERC key alone: no wallet key in its process.
  const owner = privateKeyToAccount(ANVIL_KEYS[LOCAL_ROLES.operator]);
  const operatorEercKey = `0x${(await deriveKeyFromWallet(owner)).toString(16).padStart(64, "0")}`;
  w = await localWorld({
    providers: [{ namespace: "weather", pricing: perCall(1_000n) }],
    fundMicro: 100_000n,
    indexer: true,
    indexerEnv: { OPERATOR_EERC_KEY: operatorEercKey, PAYER_ADDRESSES: owner.address },
  });
  const provider = w.payoutAccounts.get("weather")!;
  const balances: { kind: string; balanceMicro: string }[] = [];
  const row = async (kind: string) => balances.push({ kind, balanceMicro: (await provider.client.balance(w.tokenId)).toString() });

  const commitCalls = (sequence: number, calls: number) =>
    commitRecords(
      w.chain,
      w.manifest,
      w.server,
      w.operator.address,
      sequence,
      callRecords("weather", calls, { at: Date.now(), priceMicro: 1_000n }),
    );
  // 5 calls at 1,000 µUSDC less the 10% fee: 4,500 paid in cycle 1; then 1,500 withdrawn, 1 USDC deposited.
  await commitCalls(1, 5);
  const cycle = await w.agent().runCycle();
  if (cycle.status !== "paid") throw new Error(`expected a paid cycle, got ${cycle.status}`);
  await row("transfer_in");
  await provider.client.withdraw({ amount: 1_500n, tokenId: w.tokenId });
  await row("withdraw");
  await mintUsdc(w.chain, w.manifest, provider.account, provider.account.address, 1_000_000n);
  await provider.client.deposit({ token: w.manifest.contracts.token, amount: 1_000_000n });
  await row("deposit");
  // Two more calls, not yet paid: 1,800 pending.
  await commitCalls(2, 2);

  const indexer = new IndexerClient(w.indexer!.url);
  await indexer.waitForBlock(await w.chain.publicClient.getBlockNumber({ cacheTime: 0 }));
  const get = async (path: string) => {
    const response = await fetch(`${w.indexer!.url}${path}`);
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
    return response.json();
  };
  const auditor = privateKeyToAccount(ANVIL_KEYS[LOCAL_ROLES.auditor]);
  live = {
    earnings: await get(`/providers/${provider.account.address}/earnings`),
    audit: await get("/audit/totals"),
    recording: {
      providerSk: provider.client.exportPrivateKey().toString(),
      auditorSk: (await deriveKeyFromWallet(auditor)).toString(),
      provider: provider.account.address,
      rows: balances,
      pendingMicro: "1800",
      audit: { transfer: "4500", withdraw: "1500" },
      cycles: [{ cycle: cycle.cycle, totalMicro: cycle.paidMicro.toString() }],
    },
  };
  if (UPDATE) {
    for (const [file, value] of [
      ["provider-earnings.json", live.earnings],
      ["audit-totals.json", live.audit],
      ["recording.json", live.recording],
    ] as const)
      writeFileSync(join(FIXTURES, file), `${JSON.stringify(value, null, 2)}\n`);
  }
});

afterAll(async () => {
  await w?.close();
});

describe("the recorded API answers", () => {
  it("decrypt, on the live server, to what the chain holds", () => {
    const r = live.recording;
    const history = decryptHistory(parseEarnings(live.earnings, "live"), BigInt(r.providerSk));
    const rows = history.tokens.find((t) => t.tokenId === w.tokenId)!.rows;
    expect(rows.map((x) => ({ kind: x.kind, balanceMicro: x.balanceMicro.toString() }))).toEqual(r.rows);
    expect(history.pending?.amountMicro).toBe(BigInt(r.pendingMicro));
    const audit = auditTotals(parseAuditTotals(live.audit, "live"), BigInt(r.auditorSk));
    const token = audit.tokens.find((t) => t.tokenId === w.tokenId)!;
    expect({ transfer: token.byKind.transfer.amountMicro.toString(), withdraw: token.byKind.withdraw.amountMicro.toString() }).toEqual(
      r.audit,
    );
    expect(audit.cycles?.map((c) => ({ cycle: c.cycle, totalMicro: c.totalMicro.toString() }))).toEqual(r.cycles);
  });

  it("have the shape the server answers with today", () => {
    expectSameShape(live.earnings, recorded("provider-earnings.json"));
    expectSameShape(live.audit, recorded("audit-totals.json"));
    expectSameShape(live.recording, recorded("recording.json"));
  });
});
