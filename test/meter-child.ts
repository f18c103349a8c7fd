import { createMeter, serveMcpOverHttp } from "../src/meter/index.js";
import { createProviderServer, PRICING, SERVER_ADDRESS, startUpstream } from "./meter-fixtures.js";

const env = (name: string) => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const ledgerUrl = env("LEDGER_URL");
  const hold = Number(env("HOLD_AFTER_COMMIT_MS"));
  const meter = createMeter({
    spoolDir: env("SPOOL_DIR"),
    serverAddress: SERVER_ADDRESS,
    pricing: PRICING,
    batch: { maxRecords: Number(env("MAX_RECORDS")), maxAgeMs: Number(env("MAX_AGE_MS")) },
    retry: { minMs: 50, maxMs: 500 },
    onBatch: async (batch) => {
      const res = await fetch(ledgerUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          pid: process.pid,
          batchId: batch.batchId,
          sequence: batch.sequence,
          period: batch.period,
          eventIds: batch.records.map((r) => r.eventId),
        }),
      });
      if (!res.ok) throw new Error(`ledger answered ${res.status}`);
      const { txHash } = (await res.json()) as { txHash: string };
      if (hold > 0) await sleep(hold);
      return { txHash };
    },
  });
  const report = await meter.recover();
  const upstream = await startUpstream();
  const host = await serveMcpOverHttp({ createMcpServer: () => createProviderServer(meter, upstream.url) });
  process.on("SIGTERM", () => {
    void (async () => {
      await host.close();
      await meter.close();
      await upstream.close();
      process.exit(0);
    })();
  });
  process.stdout.write(`${JSON.stringify({ url: host.url, report })}\n`);
  if (process.env.FLUSH) {
    await meter.flush();
    process.stdout.write(`${JSON.stringify({ flushed: true })}\n`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
