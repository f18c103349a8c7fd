import { z } from "zod/v4";
import { address, fixedHex, uint } from "../http/schema.js";
import { signature } from "../http/signed.js";

/**
 * The payout agent's requests and answers (`server.ts`), one schema each: the agent parses
 * requests and builds answers with them, `AgentClient` (`client.ts`) parses the answers, and the
 * agent's OpenAPI document (`openapi.ts`, served at `GET /openapi.json`) is generated from them.
 */

/** A distribute request may be valid for at most this long (seconds): a leaked one is replayable only within it, and only once. */
export const MAX_DISTRIBUTE_LEAD_S = 600;

/**
 * `POST /revenue/distribute`: an EIP-712 `Distribute` signed by the operator. Given the clock
 * (Unix seconds), the deadline must also lie ahead, by at most `MAX_DISTRIBUTE_LEAD_S`.
 */
export const distributeRequestAt = (now?: () => number) =>
  z.object(
    {
      requestId: fixedHex(32, "must be 0x-prefixed 32-byte hex").meta({ description: "random, accepted once" }),
      deadline: uint(256)
        .check((ctx) => {
          if (!now) return;
          const t = BigInt(now());
          const message =
            ctx.value <= t
              ? "has passed: sign again with a later deadline"
              : ctx.value > t + BigInt(MAX_DISTRIBUTE_LEAD_S)
                ? `must be at most ${MAX_DISTRIBUTE_LEAD_S} s in the future`
                : undefined;
          if (message) ctx.issues.push({ code: "custom", input: ctx.value, message });
        })
        .meta({ description: `Unix seconds, at most ${MAX_DISTRIBUTE_LEAD_S} s ahead` }),
      signature,
    },
    { error: "must be a JSON object" },
  );

export const distributeRequest = distributeRequestAt();

const count = z.number().int().min(0);

/** The running cycle's counts. */
export const cycleProgress = z.object({ cycle: count, total: count, proved: count, paid: count, resumed: z.boolean() });

/** The last cycle's outcome: counts, blocks and timings, never an amount. */
export const lastCycle = z.discriminatedUnion("status", [
  z.object({ status: z.literal("nothing_owed"), throughBlock: z.string(), finishedAt: z.string(), trigger: z.string() }),
  z.object({
    status: z.literal("paid"),
    cycle: count,
    throughBlock: z.string(),
    resumed: z.boolean(),
    transfers: count,
    recoveries: count,
    seconds: z.number(),
    finishedAt: z.string(),
    trigger: z.string(),
  }),
  z.object({ status: z.literal("failed"), code: z.string(), message: z.string(), finishedAt: z.string(), trigger: z.string() }),
]);

/** `GET /revenue/status`. */
export const agentStatus = z
  .object({ state: z.enum(["idle", "running"]), progress: cycleProgress.nullable(), last: lastCycle.nullable() })
  .meta({ id: "AgentStatus" });

/** `POST /revenue/distribute` answer (202). */
export const distributeAccepted = z.object({ accepted: z.literal(true), status: agentStatus });

/** `GET /revenue/chain`: what a client signs for (the EIP-712 domain's chain and agent id) and who may sign. */
export const agentChain = z.object({ chainId: count, operator: address, agentId: fixedHex(32) });

/** `GET /health`. */
export const agentHealth = z.object({ ok: z.literal(true), state: z.enum(["idle", "running"]) });

export type LastCycle = z.infer<typeof lastCycle>;
export type AgentStatus = z.infer<typeof agentStatus>;
export type AgentChain = z.output<typeof agentChain>;
export type DistributeRequestWire = z.input<typeof distributeRequest>;

export const AGENT_PATHS = {
  distribute: "/revenue/distribute",
  status: "/revenue/status",
  chain: "/revenue/chain",
  health: "/health",
  metrics: "/metrics",
  openapi: "/openapi.json",
} as const;
