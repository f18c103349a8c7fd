import { mkdtempSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type { Hex, PrivateKeyAccount } from "viem";
import { startAnvil } from "../src/chain/anvil.js";
import { connectChain } from "../src/chain/clients.js";
import { usdcTokenId } from "../src/deployment/manifest.js";
import { Prover } from "../src/eerc/prover.js";
import { startIndexer } from "../src/indexer/process.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import {
  callRecords,
  commitRecords,
  eercAccount,
  fundPayer,
  localMarketplace,
  localPayoutAgent,
  newFundedAccount,
  registerProvider,
} from "../src/local/marketplace.js";
import { PricingModel } from "../src/usage/registry.js";
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
  const dir = mkdtempSync(join(tmpdir(), "bs-bench-presence-"));
  const anvil = await startAnvil();
  const prover = new Prover();
  let stopIndexer = async () => {};
  try {
    const chain = await connectChain(anvil.rpcUrl);
    const { owner, manifest, manifestPath, operator, server } = await localMarketplace(chain, anvil.rpcUrl, prover, dir);
    const namespaces: string[] = [];
    for (let i = 0; i < providers; i++) {
      const account: PrivateKeyAccount = await newFundedAccount(chain);
      await eercAccount(chain, manifest, prover, account);
      const namespace = `presence${i}`;
      await registerProvider(chain, manifest, owner, {
        namespace,
        payoutAccount: account.address,
        pricing: { model: PricingModel.PerCall, pricePerCallMicro: PRICE_MICRO, poolWeight: 0, tiers: [] },
      });
      namespaces.push(namespace);
    }
    await fundPayer(chain, manifest, operator, owner, 10_000_000n);
    const tokenId = await usdcTokenId(chain, manifest);
    const indexer = await startIndexer({
      manifestPath,
      env: { RPC_URL: anvil.rpcUrl },
      pgliteDir: join(dir, "pglite"),
      logFile: join(dir, "ponder.log"),
    });
    stopIndexer = () => indexer.stop();
    log(`presence: ${providers} providers registered, ${withUsage} with usage per cycle`);

    let sequence = 0;
    const cycle = async (everyProvider: boolean): Promise<CycleCost> => {
      const records = namespaces.slice(0, withUsage).flatMap((ns) => callRecords(ns, 3, { at: Date.now(), priceMicro: PRICE_MICRO }));
      await commitRecords(chain, manifest, server, operator.address, ++sequence, records);
      await new IndexerClient(indexer.url).waitForBlock(await chain.publicClient.getBlockNumber({ cacheTime: 0 }));
      const loadAverage1mAtStart = round(loadavg()[0]!, 2);
      const result = await localPayoutAgent({ operator, indexerUrl: indexer.url, tokenId, feeBps: 1000 }, { everyProvider }).runCycle();
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
    await stopIndexer();
    await prover.close();
    await anvil.stop();
  }
}
