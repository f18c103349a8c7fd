import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";

export type McpHttpHost = {
  /** The MCP endpoint, e.g. http://127.0.0.1:4321/mcp. */
  url: string;
  port: number;
  http: Server;
  /** Open sessions. */
  sessions(): number;
  close(): Promise<void>;
};

/**
 * Serves MCP over Streamable HTTP on node:http, one session per client connection: each
 * session gets its own transport and its own McpServer from `createMcpServer` (an McpServer
 * serves one transport), so tools are registered once per session.
 */
export async function serveMcpOverHttp(options: {
  createMcpServer: () => McpServer;
  host?: string;
  port?: number;
  path?: string;
}): Promise<McpHttpHost> {
  const host = options.host ?? "127.0.0.1";
  const path = options.path ?? "/mcp";
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; server: McpServer }>();

  const openSession = async (req: IncomingMessage, res: ServerResponse) => {
    const server = options.createMcpServer();
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res);
    if (transport.sessionId === undefined) await server.close();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== path) {
      res.writeHead(404).end();
      return;
    }
    const header = req.headers["mcp-session-id"];
    const sessionId = Array.isArray(header) ? header[0] : header;
    if (sessionId === undefined) {
      if (req.method !== "POST") {
        res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: "missing mcp-session-id" }));
        return;
      }
      await openSession(req, res);
      return;
    }
    const session = sessions.get(sessionId);
    if (!session) {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "unknown session" }));
      return;
    }
    await session.transport.handleRequest(req, res);
  };

  const http = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: err instanceof Error ? err.message : String(err) }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(options.port ?? 0, host, () => {
      http.off("error", reject);
      resolve();
    });
  });
  const port = (http.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}${path}`,
    port,
    http,
    sessions: () => sessions.size,
    async close() {
      for (const { server } of [...sessions.values()]) await server.close();
      sessions.clear();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
