import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { verifyWebhook, type WebhookEvent, type WebhookType } from "../src/notify/webhooks.js";

export type Delivery = { headers: IncomingHttpHeaders; body: string };

export type WebhookReceiver = {
  url: string;
  /** Every request, verified or not, in arrival order. */
  deliveries: Delivery[];
  /** The deliveries that verify under `secret`, as events. */
  verified(): WebhookEvent[];
  /** Waits until a verified event of `type` matching `match` has arrived. */
  waitFor(type: WebhookType, match?: (e: WebhookEvent) => boolean, timeoutMs?: number): Promise<WebhookEvent>;
  close(): Promise<void>;
};

/** A webhook receiver on a free loopback port; `statuses` are answered in turn, then 204. */
export async function startWebhookReceiver(secret: string, statuses: number[] = []): Promise<WebhookReceiver> {
  const deliveries: Delivery[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      deliveries.push({ headers: req.headers, body });
      res.statusCode = statuses.shift() ?? 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const verified = () =>
    deliveries.flatMap((d) => {
      try {
        return [verifyWebhook(secret, d.headers, d.body)];
      } catch {
        return [];
      }
    });
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    deliveries,
    verified,
    async waitFor(type, match = () => true, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = verified().find((e) => e.type === type && match(e));
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no verified ${type} webhook within ${timeoutMs} ms (${deliveries.length} deliveries)`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
