import type { db as ApiDb } from "ponder:api";
import type { Hono } from "hono";
import type { IndexerSettings } from "../config/indexer.js";
import { operationsSettings } from "../config/operations.js";
import { summarize } from "../errors.js";
import { IndexerClient } from "../indexer-client/client.js";
import { webhookNotifier } from "../notify/webhooks.js";
import { PROMETHEUS_CONTENT_TYPE, renderMetrics, type Sample } from "../util/prometheus.js";
import { watchCommittedBatches } from "./batch-webhooks.js";
import { apiLogger } from "./log.js";
import { rpcClients } from "./relayer.js";

type Db = typeof ApiDb;

/**
 * Ponder answers `/health`, `/ready`, `/status` and its own `/metrics` on this port and reserves
 * those paths; the API's own operations routes live under this prefix.
 */
export const OPERATIONS_PREFIX = "/ops";

/** The relaying write routes whose answers are counted, by outcome. */
const WRITE_ROUTES = ["/providers/register", "/providers/update", "/usage/submit"] as const;
const OUTCOMES = ["accepted", "rejected", "failed"] as const;
type Outcome = (typeof OUTCOMES)[number];

const outcomeOf = (status: number): Outcome => (status < 400 ? "accepted" : status < 500 ? "rejected" : "failed");

export type HealthProbe = {
  ok: true;
  /**
   * Historical indexing is done (Ponder's /ready) and the indexer has caught up since it started,
   * after a restart too (`catchUpGate`): the indexed reads are answered.
   */
  ready: boolean;
  indexedBlock: number | null;
  headBlock: number | null;
  lagBlocks: number | null;
};

/**
 * Mounts the API's operations surface: `GET /ops/health` (indexer readiness and lag, as JSON) and
 * `GET /ops/metrics` (Prometheus text: indexer lag and readiness, relayed writes by outcome, how
 * many providers are owed something, batch notifications sent), and, with WEBHOOK_URLS, sends
 * `batch.committed` for each usage batch the indexer stores. Counts and block numbers only: no
 * amount leaves here. Mount it before the write routes, so their answers are counted.
 */
export function mountOperations(
  app: Hono,
  deps: {
    db: Db;
    settings: IndexerSettings;
    env: Record<string, string | undefined>;
    /** How many providers are owed something (null: the payout ledger is not served or unreadable). */
    payouts: { owedProviders(): Promise<number | null> };
    /** Throws until the indexer has caught up since it started (`catchUpGate`). */
    checkIndexed: () => Promise<void>;
  },
): void {
  const { settings, env } = deps;
  const log = apiLogger("operations", env);
  const operations = operationsSettings(env);
  // Ponder serves /status and /ready itself, next to this app, on the process's port.
  const self = `http://127.0.0.1:${env.PORT || 42069}`;
  const indexer = new IndexerClient(self);
  const { publicClient } = rpcClients(settings.chainId, settings.rpcUrl);

  const writes = new Map<string, number>(WRITE_ROUTES.flatMap((route) => OUTCOMES.map((o) => [`${route} ${o}`, 0] as const)));
  for (const route of WRITE_ROUTES) {
    app.use(route, async (c, next) => {
      if (c.req.method !== "POST") return next();
      let outcome: Outcome = "failed";
      try {
        await next();
        outcome = outcomeOf(c.res.status);
      } finally {
        const key = `${route} ${outcome}`;
        writes.set(key, (writes.get(key) ?? 0) + 1);
      }
    });
  }

  const ready = async () => {
    try {
      if ((await fetch(`${self}/ready`, { signal: AbortSignal.timeout(5_000) })).status !== 200) return false;
      await deps.checkIndexed();
      return true;
    } catch {
      return false;
    }
  };
  const probe = async (): Promise<HealthProbe> => {
    const [isReady, indexed, head] = await Promise.all([
      ready(),
      indexer
        .indexedBlocks()
        .then((blocks) => (Object.values(blocks).length > 0 ? Math.min(...Object.values(blocks)) : null))
        .catch(() => null),
      publicClient
        .getBlockNumber({ cacheTime: 0 })
        .then(Number)
        .catch((e: unknown) => {
          log.warn({ code: summarize(e).code }, `the chain did not answer: ${summarize(e).message}`);
          return null;
        }),
    ]);
    const lag = indexed !== null && head !== null ? Math.max(0, head - indexed) : null;
    return { ok: true, ready: isReady, indexedBlock: indexed, headBlock: head, lagBlocks: lag };
  };

  const notifier = webhookNotifier(operations.webhooks, apiLogger("webhooks", env));
  const batches = operations.webhooks
    ? watchCommittedBatches({ db: deps.db, notifier, ready, log: apiLogger("webhooks", env), intervalMs: settings.pollingInterval * 5 })
    : undefined;
  if (operations.webhooks) log.info({ webhooks: operations.webhooks.urls.length }, "batch.committed webhooks on");

  app.get(`${OPERATIONS_PREFIX}/health`, async (c) => c.json(await probe()));
  app.get(`${OPERATIONS_PREFIX}/metrics`, async (c) => {
    const [p, owed] = await Promise.all([probe(), deps.payouts.owedProviders().catch(() => null)]);
    const known = (value: number | null): Sample[] => (value === null ? [] : [{ value }]);
    const text = renderMetrics([
      {
        name: "backendshield_api_indexer_ready",
        help: "1 once historical indexing is done.",
        type: "gauge",
        samples: [{ value: p.ready ? 1 : 0 }],
      },
      {
        name: "backendshield_api_indexed_block",
        help: "Latest block the indexer has stored.",
        type: "gauge",
        samples: known(p.indexedBlock),
      },
      {
        name: "backendshield_api_head_block",
        help: "Latest block of the chain, as its RPC answers.",
        type: "gauge",
        samples: known(p.headBlock),
      },
      {
        name: "backendshield_api_indexer_lag_blocks",
        help: "Blocks the indexer is behind the chain head.",
        type: "gauge",
        samples: known(p.lagBlocks),
      },
      {
        name: "backendshield_api_relayed_writes_total",
        help: "Write requests answered by the relaying routes: accepted (sent), rejected (the request), failed (the relayer or chain).",
        type: "counter",
        samples: WRITE_ROUTES.flatMap((route) =>
          OUTCOMES.map((outcome) => ({ labels: { route, outcome }, value: writes.get(`${route} ${outcome}`) ?? 0 })),
        ),
      },
      {
        name: "backendshield_api_payout_ledger_up",
        help: "1 when the payout ledger could be read (needs the operator's eERC key).",
        type: "gauge",
        samples: [{ value: owed === null ? 0 : 1 }],
      },
      {
        name: "backendshield_api_providers_owed",
        help: "Providers owed something not yet paid: a count, never an amount.",
        type: "gauge",
        samples: known(owed),
      },
      {
        name: "backendshield_api_batch_notifications_total",
        help: "batch.committed webhook events queued since the process started.",
        type: "counter",
        samples: [{ value: batches?.notified() ?? 0 }],
      },
    ]);
    return c.text(text, 200, { "content-type": PROMETHEUS_CONTENT_TYPE });
  });
}
