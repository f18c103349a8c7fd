import { loadavg } from "node:os";
import type { Hex } from "viem";
import { IndexerClient } from "../src/indexer-client/client.js";
import { callRecords, commitRecords } from "../src/local/marketplace.js";
import { localWorld } from "../src/local/world.js";
import { perCall } from "../src/usage/pricing.js";
import { round, writeResults } from "./report.js";

export type PresenceBenchOptions = { providers: number; withUsage: number; log: (line: string) => void };

type CycleCost = { transfers: number; zeroTransfers: number; payMs: number; gas: string; loadAverage1mAtStart: number };

const PRICE_MICRO = 1000n;

/**
 * The cost of payout presence (`PAYOUT_EVERY_PROVIDER`), written to `bench/results/presence.json`:
 * `providers` per-call providers are registered, `withUsage` of them have usage in each cycle.
 * Baseline, same run: a cycle paying only the providers owed something. Then the same usage with
 * every active provider paid, the others with zero-amount transfers. Reported: the paying phase's
 * time and the transfers' gas, both cycles and per zero transfer. Automine, so the figures are
 * the proving and the gas, not the block time.
 */
export async function benchPresence({ providers, withUsage, log }: PresenceBenchOptions) {
  const namespaces = Array.from({ length: providers }, (_, i) => `presence${i}`);
  const pricing = perCall(PRICE_MICRO);
  const world = await localWorld({
    providers: namespaces.map((namespace) => ({ namespace, pricing })),
    fundMicro: 10_000_000n,
    indexer: true,
    settlement: { feeBps: 1000, periodUnit: "month" },
  });
  try {
    const { chain, manifest, server, operator } = world;
    const indexer = world.indexer!;
    log(`presence: ${providers} providers registered, ${withUsage} with usage per cycle`);

    let sequence = 0;
    const cycle = async (everyProvider: boolean): Promise<CycleCost> => {
      const records = namespaces.slice(0, withUsage).flatMap((ns) => callRecords(ns, 3, { at: Date.now(), priceMicro: PRICE_MICRO }));
      await commitRecords(chain, manifest, server, operator.address, ++sequence, records);
      await new IndexerClient(indexer.url).waitForBlock(await chain.publicClient.getBlockNumber({ cacheTime: 0 }));
      const loadAverage1mAtStart = round(loadavg()[0]!, 2);
      const result = await world.agent({ everyProvider }).runCycle();
      if (result.status !== "paid") throw new Error(`expected a paid cycle, got ${result.status}`);
      let gas = 0n;
      for (const t of result.transfers) gas += (await chain.publicClient.getTransactionReceipt({ hash: t.txHash as Hex })).gasUsed;
      return {
        transfers: result.transfers.length,
        zeroTransfers: result.transfers.filter((t) => t.amount === 0n).length,
        payMs: Math.round(result.ms.pay),
        gas: gas.toString(),
        loadAverage1mAtStart,
      };
    };

    const owedOnly = await cycle(false);
    log(`presence: owed only: ${owedOnly.transfers} transfers in ${round(owedOnly.payMs / 1000)} s, ${owedOnly.gas} gas`);
    const everyProvider = await cycle(true);
    log(
      `presence: every provider: ${everyProvider.transfers} transfers (${everyProvider.zeroTransfers} of 0) in ${round(everyProvider.payMs / 1000)} s, ${everyProvider.gas} gas`,
    );
    const zeros = everyProvider.zeroTransfers;
    const perZero = {
      ms: zeros === 0 ? 0 : Math.round((everyProvider.payMs - owedOnly.payMs) / zeros),
      gas: zeros === 0 ? "0" : ((BigInt(everyProvider.gas) - BigInt(owedOnly.gas)) / BigInt(zeros)).toString(),
    };
    log(`presence: each zero-amount transfer adds ${perZero.ms} ms of paying and ${perZero.gas} gas`);
    const results = {
      providers,
      withUsage,
      owedOnly,
      everyProvider,
      perZeroTransfer: perZero,
      costRatio: round(everyProvider.payMs / owedOnly.payMs, 2),
    };
    log(`presence: written to ${writeResults("presence.json", results)}`);
    return results;
  } finally {
    await world.close();
  }
}
