import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import {
  WebStandardStreamableHTTPServerTransport,
  type WebStandardStreamableHTTPServerTransportOptions,
} from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";

export type McpHandlerOptions = {
  /** A fresh McpServer for each session (an McpServer serves one transport), tools registered on it. */
  createMcpServer: () => McpServer;
};

/** What every mounted MCP handler carries besides the request function. */
export type McpSessions = {
  /** Open sessions. */
  sessions(): number;
  /** Closes every open session. The host's own server is the operator's to close. */
  close(): Promise<void>;
};

/** A Node request handler: mounts as `app.all("/mcp", handler)` in Express, or runs under node:http. */
export type McpRequestHandler = ((req: IncomingMessage, res: ServerResponse, parsedBody?: unknown) => Promise<void>) & McpSessions;

/** A web-standard handler: a Request, or a Hono context (`app.all("/mcp", handler)`), answered with a Response. */
export type McpHonoHandler = ((input: Request | { req: { raw: Request } }) => Promise<Response>) & McpSessions;

export type McpHttpHost = McpSessions & {
  /** The MCP endpoint, e.g. http://127.0.0.1:4321/mcp. */
  url: string;
  port: number;
  http: Server;
};

type SessionTransport = StreamableHTTPServerTransport | WebStandardStreamableHTTPServerTransport;

/** A request refused before any transport sees it; each host answers it as `{ error }` JSON. */
type Refusal = { status: number; error: string };

/**
 * The session table behind every host: a POST without an `mcp-session-id` opens a session with
 * its own transport and McpServer, a request naming an open session goes to that session's
 * transport, anything else is refused. `serve` is generic in the host's request and response so
 * that node:http, Express and Hono share these rules.
 */
function sessionTable<T extends SessionTransport>(
  createMcpServer: () => McpServer,
  Transport: new (options: WebStandardStreamableHTTPServerTransportOptions) => T,
) {
  const sessions = new Map<string, { transport: T; server: McpServer }>();
  return {
    async serve<R>(
      request: { sessionId: string | undefined; method: string },
      handle: (transport: T) => Promise<R>,
      refuse: (refusal: Refusal) => R,
    ): Promise<R> {
      if (request.sessionId === undefined) {
        if (request.method !== "POST") return refuse({ status: 400, error: "missing mcp-session-id" });
        const server = createMcpServer();
        const transport: T = new Transport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => {
            sessions.set(id, { transport, server });
          },
        });
        transport.onclose = () => {
          if (transport.sessionId) sessions.delete(transport.sessionId);
        };
        await server.connect(transport);
        const answer = await handle(transport);
        // Not an initialize request: no session was opened, and nothing else will close this server.
        if (transport.sessionId === undefined) await server.close();
        return answer;
      }
      const session = sessions.get(request.sessionId);
      if (!session) return refuse({ status: 404, error: "unknown session" });
      return handle(session.transport);
    },
    sessions: () => sessions.size,
    async close() {
      for (const { server } of [...sessions.values()]) await server.close();
      sessions.clear();
    },
  };
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * MCP Streamable HTTP as a Node request handler, one session per client connection. A body a
 * framework has already read (Express's `express.json()` leaves it on `req.body`) is handed to
 * the transport, since the request stream is spent; `parsedBody` overrides it.
 */
export function mcpRequestHandler(options: McpHandlerOptions): McpRequestHandler {
  const table = sessionTable(options.createMcpServer, StreamableHTTPServerTransport);
  const json = (res: ServerResponse, status: number, body: { error: string }) => {
    if (res.writableEnded) return;
    if (!res.headersSent) res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const handler = async (req: IncomingMessage, res: ServerResponse, parsedBody?: unknown) => {
    const header = req.headers["mcp-session-id"];
    // Only a spent stream means a parser took the body: a parser that skipped the request
    // (another content type) can still leave `req.body` set, to `{}`.
    const readBefore = req.readableEnded ? (req as IncomingMessage & { body?: unknown }).body : undefined;
    // Express calls a handler with `next` third.
    const body = parsedBody === undefined || typeof parsedBody === "function" ? readBefore : parsedBody;
    try {
      await table.serve(
        { sessionId: Array.isArray(header) ? header[0] : header, method: req.method ?? "GET" },
        (transport) => transport.handleRequest(req, res, body),
        ({ status, error }) => json(res, status, { error }),
      );
    } catch (err) {
      json(res, 500, { error: messageOf(err) });
    }
  };
  return Object.assign(handler, { sessions: table.sessions, close: table.close });
}

/**
 * MCP Streamable HTTP as a web-standard handler (the SDK's web-standard transport), one session
 * per client connection: it takes a Request and answers a Response, so it runs on every runtime
 * Hono runs on, not only on @hono/node-server.
 */
export function mcpHonoHandler(options: McpHandlerOptions): McpHonoHandler {
  const table = sessionTable(options.createMcpServer, WebStandardStreamableHTTPServerTransport);
  const json = (status: number, body: { error: string }) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  const handler = async (input: Request | { req: { raw: Request } }) => {
    const request = "req" in input ? input.req.raw : input;
    try {
      return await table.serve(
        { sessionId: request.headers.get("mcp-session-id") ?? undefined, method: request.method },
        (transport) => transport.handleRequest(request),
        ({ status, error }) => json(status, { error }),
      );
    } catch (err) {
      return json(500, { error: messageOf(err) });
    }
  };
  return Object.assign(handler, { sessions: table.sessions, close: table.close });
}

/** Serves `mcpRequestHandler` on its own node:http server, at `path` (default /mcp) and nowhere else. */
export async function serveMcpOverHttp(
  options: McpHandlerOptions & {
    host?: string;
    port?: number;
    path?: string;
  },
): Promise<McpHttpHost> {
  const host = options.host ?? "127.0.0.1";
  const path = options.path ?? "/mcp";
  const handler = mcpRequestHandler(options);
  const http = createServer((req, res) => {
    if (new URL(req.url ?? "/", "http://localhost").pathname !== path) {
      res.writeHead(404).end();
      return;
    }
    void handler(req, res);
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
    sessions: handler.sessions,
    async close() {
      await handler.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
