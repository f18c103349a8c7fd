import type { HttpClientOptions } from "../http/client.js";
import { requestParsed } from "../http/schema.js";
import {
  AGENT_PATHS,
  type AgentChain,
  type AgentStatus,
  agentChain,
  agentHealth,
  agentStatus,
  type DistributeRequestWire,
  distributeAccepted,
} from "./schemas.js";

/**
 * The one client of the payout agent's HTTP API, each answer parsed with its schema: an error
 * status is an ApiHttpError, a malformed answer an ApiResponseError, no answer ApiUnreachableError.
 */
export class AgentClient {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly options: HttpClientOptions = {},
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
  }

  /** `GET /revenue/chain`: the chain and agent id a distribute request is signed for, and the operator who may sign it. */
  chain(): Promise<AgentChain> {
    return requestParsed(agentChain, `${this.baseUrl}${AGENT_PATHS.chain}`, {}, this.options);
  }

  /** `GET /revenue/status`. */
  status(): Promise<AgentStatus> {
    return requestParsed(agentStatus, `${this.baseUrl}${AGENT_PATHS.status}`, {}, this.options);
  }

  /** `GET /health`. */
  health() {
    return requestParsed(agentHealth, `${this.baseUrl}${AGENT_PATHS.health}`, {}, this.options);
  }

  /** `POST /revenue/distribute`: starts a cycle (202); a refusal is an ApiHttpError with the agent's field and message. */
  distribute(request: DistributeRequestWire) {
    return requestParsed(distributeAccepted, `${this.baseUrl}${AGENT_PATHS.distribute}`, { method: "POST", json: request }, this.options);
  }
}
