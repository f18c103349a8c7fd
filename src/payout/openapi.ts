import { z } from "zod/v4";
import { openApiDocument, type RouteDoc } from "../http/openapi.js";
import { errorBody } from "../http/schema.js";
import { AGENT_PATHS, agentChain, agentHealth, agentStatus, distributeAccepted, distributeRequest } from "./schemas.js";

const refused = (description: string) => ({ description, schema: errorBody });

/** Every route of the payout agent (`server.ts`), documented from the schemas it parses and answers with. */
export const AGENT_ROUTES: readonly RouteDoc[] = [
  {
    method: "post",
    path: AGENT_PATHS.distribute,
    summary: "Run a payout cycle now",
    description:
      "Takes an EIP-712 `Distribute` (domain `BackendShield PayoutAgent` version 2, the chain id and the agent id of `GET /revenue/chain` as salt) signed by the operator, valid at most 10 minutes ahead; each `requestId` is accepted once, even across restarts. Answers 202 and runs the cycle; follow it with `GET /revenue/status`.",
    body: distributeRequest,
    responses: {
      202: { description: "the cycle started", schema: distributeAccepted },
      400: refused("malformed, or a deadline passed or too far ahead"),
      401: refused("a signature that does not recover"),
      403: refused("signed by someone other than the operator, or for another agent"),
      409: refused("a used requestId, or a cycle is running"),
      413: refused("a body over 16 KiB"),
      415: refused("not sent as application/json"),
    },
  },
  {
    method: "get",
    path: AGENT_PATHS.status,
    summary: "The running cycle's progress and the last cycle's outcome (counts and timings, never an amount)",
    responses: { 200: { description: "the status", schema: agentStatus } },
  },
  {
    method: "get",
    path: AGENT_PATHS.chain,
    summary: "What a distribute request is signed for: chain id, agent id, and the operator who may sign",
    responses: { 200: { description: "the EIP-712 domain's values", schema: agentChain } },
  },
  {
    method: "get",
    path: AGENT_PATHS.health,
    summary: "Liveness, for a supervisor",
    responses: { 200: { description: "alive", schema: agentHealth } },
  },
  {
    method: "get",
    path: AGENT_PATHS.metrics,
    summary: "Prometheus metrics: cycles by outcome, transfers, recoveries and timings, never an amount",
    responses: { 200: { description: "Prometheus text format", text: { contentType: "text/plain" } } },
  },
  {
    method: "get",
    path: AGENT_PATHS.openapi,
    summary: "This document",
    responses: { 200: { description: "the OpenAPI 3.1 document of the agent", schema: z.unknown() } },
  },
];

/** The agent's OpenAPI 3.1 document, served at `GET /openapi.json`. */
export const agentDocument = () =>
  openApiDocument(
    {
      title: "BackendShield payout agent",
      version: "1",
      description:
        "The payout agent's HTTP routes (loopback). Integers in requests travel as decimal strings; every refusal is `{ error: { field, message } }`.",
    },
    AGENT_ROUTES,
  );
