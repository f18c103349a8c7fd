import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { BaseError, summarize } from "../errors.js";
import { type LogTarget, toLogger } from "../log.js";

/**
 * Signed webhook notifications, after the Standard Webhooks scheme: each event is POSTed as JSON
 * `{ type, id, createdAt, data }` with the headers `webhook-id`, `webhook-timestamp` (Unix seconds)
 * and `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`. A receiver checks
 * them with `verifyWebhook`. Payloads carry counts, cycle and block numbers, transaction hashes and
 * batch ids, never an amount or a key. Delivery runs in the background with retries; it never
 * blocks or fails what it reports on.
 */

export const WEBHOOK_TYPES = [
  "batch.committed",
  "cycle.paid",
  "cycle.failed",
  "payer.underfunded",
  "payout.deferred",
  "usage.ignored",
] as const;
export type WebhookType = (typeof WEBHOOK_TYPES)[number];

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type WebhookData = { [key: string]: Json };

export type WebhookEvent = { type: WebhookType; id: string; createdAt: string; data: WebhookData };

/** What a component sends its events to; `id` makes a repeated event recognisable (default: a fresh id). */
export type Notifier = { notify(type: WebhookType, data: WebhookData, id?: string): void };

/** Signatures are accepted this long either side of the receiver's clock, in seconds. */
export const DEFAULT_TOLERANCE_S = 300;

const SECRET_PREFIX = "whsec_";
/** Shortest secret accepted: 24 bytes (a `whsec_` secret's decoded bytes, or the characters of any other). */
export const MIN_SECRET_BYTES = 24;

/** The HMAC key of a secret: `whsec_<base64>` is decoded (Standard Webhooks), any other string is used as its UTF-8 bytes. */
export function webhookKey(secret: string): Buffer {
  return secret.startsWith(SECRET_PREFIX) ? Buffer.from(secret.slice(SECRET_PREFIX.length), "base64") : Buffer.from(secret, "utf8");
}

/** The `webhook-signature` header's value for one delivery. */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac("sha256", webhookKey(secret)).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}

/** A delivery the receiver must refuse; `reason` says which check failed. */
export class WebhookVerificationError extends BaseError {
  readonly code = "WEBHOOK_REJECTED";
  constructor(
    readonly reason: "missing_header" | "bad_timestamp" | "expired" | "bad_signature" | "bad_body",
    message: string,
  ) {
    super(message);
  }
}

export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const value = headers[name] ?? Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Checks a delivery: the three headers are present, the timestamp is within `toleranceS` of now,
 * and one of the `v1` signatures is the HMAC of `id.timestamp.body` under `secret`; `body` is the
 * raw request body, byte for byte. Returns the event, or throws WebhookVerificationError.
 */
export function verifyWebhook(
  secret: string,
  headers: WebhookHeaders,
  body: string,
  toleranceS: number = DEFAULT_TOLERANCE_S,
  now: number = Math.floor(Date.now() / 1000),
): WebhookEvent {
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestamp || !signatures) {
    throw new WebhookVerificationError("missing_header", "webhook-id, webhook-timestamp and webhook-signature are all required");
  }
  if (!/^\d+$/.test(timestamp)) throw new WebhookVerificationError("bad_timestamp", "webhook-timestamp must be Unix seconds");
  const ts = Number(timestamp);
  if (Math.abs(now - ts) > toleranceS) {
    throw new WebhookVerificationError("expired", `webhook-timestamp is ${now - ts} s from now, beyond the ${toleranceS} s tolerance`);
  }
  const expected = Buffer.from(signWebhook(secret, id, ts, body).slice(3), "base64");
  const matches = signatures.split(" ").some((s) => {
    const [version, value] = s.split(",", 2);
    if (version !== "v1" || !value) return false;
    const given = Buffer.from(value, "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matches) throw new WebhookVerificationError("bad_signature", "no webhook-signature matches the body under this secret");
  let event: WebhookEvent;
  try {
    event = JSON.parse(body) as WebhookEvent;
  } catch {
    throw new WebhookVerificationError("bad_body", "the body is not JSON");
  }
  if (event.id !== id) throw new WebhookVerificationError("bad_body", "the body's id is not the webhook-id header");
  return event;
}

export type WebhookSenderOptions = {
  urls: readonly string[];
  secret: string;
  log?: LogTarget;
  /** Attempts per URL, the first included (default 6). */
  attempts?: number;
  /** Delay before the first retry, doubled after each (default 1,000 ms). */
  backoffMs?: number;
  /** Per attempt (default 10,000 ms). */
  timeoutMs?: number;
  fetch?: typeof globalThis.fetch;
  now?: () => number;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Delivers events to every URL, each on its own, in the background: a non-2xx answer or a network
 * error is retried with exponential backoff, then given up with a warning. `notify` returns at once
 * and never throws; `settled` waits for the deliveries under way (tests, shutdown).
 */
export class WebhookSender implements Notifier {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly log;

  constructor(private readonly options: WebhookSenderOptions) {
    this.log = toLogger(options.log);
  }

  notify(type: WebhookType, data: WebhookData, id: string = `${type}:${randomUUID()}`): void {
    const event: WebhookEvent = { type, id, createdAt: new Date().toISOString(), data };
    const body = JSON.stringify(event);
    for (const url of this.options.urls) {
      const delivery = this.deliver(url, event, body).catch(() => {});
      this.inFlight.add(delivery);
      void delivery.finally(() => this.inFlight.delete(delivery));
    }
  }

  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  private async deliver(url: string, event: WebhookEvent, body: string): Promise<void> {
    const attempts = this.options.attempts ?? 6;
    const fetch = this.options.fetch ?? globalThis.fetch;
    // The URL's path and query may hold a receiver's token: logs name its origin only.
    const target = new URL(url).origin;
    let delay = this.options.backoffMs ?? 1_000;
    for (let attempt = 1; ; attempt++) {
      const timestamp = Math.floor((this.options.now?.() ?? Date.now()) / 1000);
      let failure: string;
      try {
        const res = await fetch(url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": String(timestamp),
            "webhook-signature": signWebhook(this.options.secret, event.id, timestamp, body),
          },
          body,
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          this.log.debug({ type: event.type, id: event.id, target, attempt }, "webhook delivered");
          return;
        }
        failure = `answered ${res.status}`;
      } catch (err) {
        failure = summarize(err).message;
      }
      if (attempt >= attempts) {
        this.log.warn({ type: event.type, id: event.id, target, attempts: attempt, failure }, "webhook not delivered: giving up");
        return;
      }
      this.log.debug({ type: event.type, id: event.id, target, attempt, failure }, "webhook delivery failed: retrying");
      await sleep(delay);
      delay *= 2;
    }
  }
}

/** A sender for the configured URLs, or a notifier that sends nothing when none are configured. */
export function webhookNotifier(settings: { urls: readonly string[]; secret: string } | undefined, log?: LogTarget): Notifier {
  return settings && settings.urls.length > 0 ? new WebhookSender({ ...settings, log }) : { notify: () => {} };
}
