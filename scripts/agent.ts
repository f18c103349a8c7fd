import { pathToFileURL } from "node:url";
import { serve } from "@hono/node-server";
import { privateKeyToAccount } from "viem/accounts";
import { connectChain } from "../src/chain/clients.js";
import { agentConfig, poolFundingKey } from "../src/config/agent.js";
import { checkLedgerOperator, checkRecordedSettlement } from "../src/config/operator.js";
import { provingArtifactsOf, readManifest, usdcTokenId } from "../src/deployment/manifest.js";
import { settlementInForce } from "../src/deployment/settlement.js";
import { EercClient } from "../src/eerc/client.js";
import { checkProvingArtifacts, detectEerc } from "../src/eerc/deployment-check.js";
import { Prover } from "../src/eerc/prover.js";
import { ProvingKeyChecks } from "../src/eerc/proving-key-checks.js";
import { summarize } from "../src/errors.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { createLogger } from "../src/log.js";
import { WebhookSender, webhookNotifier } from "../src/notify/webhooks.js";
import { PayoutAgent } from "../src/payout/agent.js";
import { checkpointScope, fileCheckpointStore } from "../src/payout/checkpoint.js";
import { PayoutCoordination } from "../src/payout/coordination.js";
import { describeCheckpointEvent } from "../src/payout/indexed-ledger.js";
import { fileRequestLog } from "../src/payout/requests.js";
import { agentIdOf, CycleRunner, payoutApp } from "../src/payout/server.js";
import { describeTerm } from "../src/revenue/schedule.js";
import { ledgerOperatorKey } from "../src/usage/keys.js";
import { run } from "./run.js";

/** Until the settings are read, the default: readable on a terminal, JSON lines otherwise. */
let log = createLogger("agent");

/** How long a stopping agent waits for webhook deliveries under way. */
const DELIVERY_GRACE_MS = 10_000;

/** How often a served agent reads the indexer between cycles (`PayoutAgent.follow`). */
const FOLLOW_MS = 5_000;

/**
 * The payout agent process. `--once` runs one cycle and exits (0 when it paid or nothing was owed);
 * otherwise it serves POST /revenue/distribute and GET /revenue/status and runs cycles every
 * PAYOUT_INTERVAL_S seconds.
 */
async function main(argv: string[]): Promise<number> {
  const manifest = readManifest();
  const config = agentConfig(process.env, manifest.chainId);
  log = createLogger("agent", config.log);
  const notifier = webhookNotifier(config.webhooks, log.child({ component: "webhooks" }));
  const delivered = () =>
    notifier instanceof WebhookSender
      ? Promise.race([notifier.settled(), new Promise<void>((r) => setTimeout(r, DELIVERY_GRACE_MS).unref())])
      : Promise.resolve();
  const chain = await connectChain(config.rpcUrl);
  if (chain.chain.id !== manifest.chainId) {
    throw new Error(`the deployment manifest is for chain ${manifest.chainId} but ${config.rpcUrl} serves chain ${chain.chain.id}`);
  }
  // The fee and pricing period are the ProviderRegistry's; settings given here must agree with the record in force.
  const inForce = await settlementInForce({ publicClient: chain.publicClient, registry: manifest.contracts.providerRegistry });
  if (!inForce) throw new Error(`the ProviderRegistry ${manifest.contracts.providerRegistry} has no settlement settings in force`);
  checkRecordedSettlement(config.asserted, inForce);
  const prover = new Prover(provingArtifactsOf(manifest));
  const contracts = { encryptedERC: manifest.contracts.encryptedERC, registrar: manifest.contracts.registrar };
  // Refuse to start on an eERC these tools do not know, with proving keys its verifier rejects, or with another operator's key.
  await detectEerc(chain.publicClient, contracts.encryptedERC);
  const record = new ProvingKeyChecks(config.provingKeyChecksFile);
  for (const c of await checkProvingArtifacts({ publicClient: chain.publicClient, prover, contracts, circuits: ["transfer"], record })) {
    log.info(
      { circuit: c.circuit, verifier: c.verifier, recordedAt: c.recordedAt },
      c.recordedAt
        ? `proving key ${c.circuit}: verified on ${c.verifier} at ${c.recordedAt} (recorded in ${record.file}; same files, same verifier code)`
        : `proving key ${c.circuit}: a throwaway proof verifies on the deployment's verifier ${c.verifier}`,
    );
  }
  const clientFor = (key: `0x${string}`) =>
    EercClient.connect({ publicClient: chain.publicClient, wallet: chain.walletFor(privateKeyToAccount(key)), contracts, prover });
  const operator = await clientFor(config.operatorKey);
  if (!(await operator.isRegistered())) throw new Error(`the operator ${operator.address} is not registered in the eERC`);
  // The operator copy of every usage line is encrypted to the key of the UsageLedger's operator:
  // refuse another key, now and before each cycle (the owner may name another operator).
  const ledger = { usageLedger: manifest.contracts.usageLedger, registrar: manifest.contracts.registrar };
  const checkOperator = async () =>
    checkLedgerOperator("OPERATOR_PRIVATE_KEY", operator.publicKey, {
      ledger: ledger.usageLedger,
      ...(await ledgerOperatorKey(chain.publicClient, ledger)),
    });
  await checkOperator();
  const payers = await Promise.all(config.payerKeys.map((k) => (k === config.operatorKey ? operator : clientFor(k))));
  // The revenue pool's USDC reaches the payers' encrypted balances before each cycle (PAYOUT_FUND_FROM_POOL).
  const poolKey = poolFundingKey(config, manifest.revenuePool);
  const funding = poolKey ? { token: manifest.contracts.token, pool: chain.walletFor(privateKeyToAccount(poolKey)) } : undefined;
  // Crash tests: the process dies at the configured step, as a power cut would.
  const fault = config.fault && { ...config.fault, stop: () => process.kill(process.pid, "SIGKILL") };
  // Several agents (AGENT_DATABASE_URL): the cycles are shared through Postgres, each agent paying from its own payers.
  const coordination =
    config.coordination &&
    (await PayoutCoordination.connect({
      ...config.coordination,
      payers: payers.map((p) => p.address),
      deployment: { chainId: manifest.chainId, usageLedger: manifest.contracts.usageLedger },
      log,
      fault,
    }));
  const agent = new PayoutAgent({
    operator,
    checkOperator,
    payers,
    pastPayers: config.pastPayers,
    indexer: new IndexerClient(config.indexerUrl),
    tokenId: await usdcTokenId(chain, manifest),
    confirmations: config.confirmations,
    checkpoint: {
      store: fileCheckpointStore(config.checkpointFile),
      scope: checkpointScope(manifest.chainId, {
        encryptedERC: manifest.contracts.encryptedERC,
        providerRegistry: manifest.contracts.providerRegistry,
        usageLedger: manifest.contracts.usageLedger,
      }),
      onEvent: (e) =>
        e.kind === "failed" || e.kind === "ignored"
          ? log.warn({ checkpoint: e.kind }, describeCheckpointEvent(e, config.checkpointFile))
          : log.info({ checkpoint: e.kind, block: Number(e.block) }, describeCheckpointEvent(e, config.checkpointFile)),
    },
    depth: config.depth,
    everyProvider: config.everyProvider,
    funding,
    coordination,
    fault,
    log,
    notify: notifier,
  });
  log.info(
    {
      operator: operator.address,
      payers: payers.length,
      depth: config.depth,
      everyProvider: config.everyProvider,
      fundFromPool: funding !== undefined,
      webhooks: config.webhooks?.urls.length ?? 0,
    },
    `payout agent: operator ${operator.address}, ${payers.length} payer(s), pipeline depth ${config.depth}, settlement ${describeTerm(inForce)}` +
      `${config.everyProvider ? ", every active provider paid every cycle" : ""}` +
      `${funding ? `, payers funded from the revenue pool ${funding.pool.account.address}` : ""}` +
      `${coordination ? `, sharing cycles with the other agents as ${coordination.agentId} (claims of ${config.coordination!.claimSize})` : ""}`,
  );

  if (argv.includes("--once")) {
    try {
      const r = await agent.runCycle();
      if (r.status === "nothing_owed") log.info({ throughBlock: Number(r.throughBlock) }, `nothing owed through block ${r.throughBlock}`);
      return 0;
    } finally {
      await Promise.all([prover.close(), delivered(), coordination?.close(), agent.checkpointed()]);
    }
  }

  const runner = new CycleRunner(agent, log);
  const app = payoutApp({
    runner,
    operator: operator.address,
    chainId: chain.chain.id,
    agentId: agentIdOf(manifest.contracts.usageLedger, config.agentName),
    requests: fileRequestLog(config.requestsFile),
    corsOrigins: config.corsOrigins,
  });
  const server = serve({ fetch: app.fetch, port: config.port, hostname: "127.0.0.1" });
  log.info({ port: config.port }, `listening on http://127.0.0.1:${config.port} (POST /revenue/distribute, GET /revenue/status)`);
  runner.schedule(config.intervalS);
  // Another agent planned a cycle: join it now rather than at the next scheduled run.
  coordination?.onPlanned(() => {
    if (!runner.busy) runner.start("planned").catch(() => {});
  });
  if (config.intervalS > 0) log.info({ intervalS: config.intervalS }, `cycles every ${config.intervalS} s`);
  // Between cycles, read what the indexer took in; a failed read is reported by the next cycle.
  const following = setInterval(() => {
    if (!runner.busy) agent.follow().catch(() => {});
  }, FOLLOW_MS);
  await new Promise<void>((resolve) => {
    const shutdown = () => resolve();
    process.once("SIGTERM", shutdown);
    process.once("SIGINT", shutdown);
  });
  clearInterval(following);
  log.info({}, "stopping: waiting for the running cycle");
  await runner.stop();
  server.close();
  await Promise.all([prover.close(), delivered(), coordination?.close(), agent.checkpointed()]);
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  run(
    () => main(process.argv.slice(2)),
    (err) => {
      const { code, message } = summarize(err);
      log.error({ code }, `payout agent failed: ${code}: ${message}`);
    },
  );
}
