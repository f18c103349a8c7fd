/** How a metered tool call ended. */
export type CallOutcome = "ok" | "tool_error" | "exception";

/** One metered MCP tool call. */
export type CallRecord = {
  eventId: string;
  provider: string;
  tool: string;
  startedAt: number;
  endedAt: number;
  durationMs: number;
  outcome: CallOutcome;
  requestBytes: number;
  responseBytes: number;
  billable: boolean;
  priceMicro: bigint;
};
