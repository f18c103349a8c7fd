import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { flowMcpToolName } from "../meter/meter.js";

// FlowMCP is not on npm: the demo and the tests register tools the way its public source does,
// so the meter is exercised on FlowMCP's registration path, not on one of its own.

/** A FlowMCP schema as its public format defines it, reduced to what registration and a GET read. */
export type FlowMcpSchema = {
  namespace: string;
  root: string;
  routes: Record<
    string,
    { requestMethod: "GET"; description: string; route: string; parameters: { position: { key: string; location: "query" } }[] }
  >;
};

/**
 * Registers a schema's routes as FlowMCP's `activateServerTools` does: one
 * `server.tool(toolName, description, zodShape, func)` per route, the tool name derived from
 * route name and namespace, the API's answer as "Result: …" text and a failure as "Error: …".
 */
export function activateServerTools({ server, schema }: { server: McpServer; schema: FlowMcpSchema }): void {
  for (const [routeName, route] of Object.entries(schema.routes)) {
    const shape = Object.fromEntries(route.parameters.map((p) => [p.position.key, z.string()]));
    server.tool(flowMcpToolName(routeName, schema.namespace), route.description, shape, async (userParams: Record<string, string>) => {
      const res = await fetch(`${schema.root}${route.route}?${new URLSearchParams(userParams)}`);
      const text = await res.text();
      return { content: [{ type: "text" as const, text: res.ok ? `Result: ${text}` : `Error: ${res.status} ${text}` }] };
    });
  }
}
