import { describe, expect, it } from "vitest";
import { signWebhook, verifyWebhook, WebhookSender, type WebhookVerificationError, webhookKey } from "../src/notify/webhooks.js";
import { startWebhookReceiver } from "./webhook-receiver.js";

// Signing and checking as Standard Webhooks does: HMAC-SHA256 over "id.timestamp.body", base64, "v1," first.

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW = 1_800_000_000;
const body = JSON.stringify({
  type: "cycle.paid",
  id: "cycle.paid:7",
  createdAt: "2027-01-15T08:00:00.000Z",
  data: { cycle: 7, transfers: 5 },
});
const headers = (over: Record<string, string> = {}) => ({
  "webhook-id": "cycle.paid:7",
  "webhook-timestamp": String(NOW),
  "webhook-signature": signWebhook(SECRET, "cycle.paid:7", NOW, body),
  ...over,
});

function rejection(run: () => unknown): { reason: string; message: string } {
  try {
    run();
  } catch (err) {
    const e = err as WebhookVerificationError;
    return { reason: e.reason, message: e.message };
  }
  throw new Error("the delivery was accepted");
}

describe("webhook signatures", () => {
  it("sign the id, the timestamp and the body with the secret's decoded bytes", () => {
    expect(webhookKey(SECRET)).toEqual(Buffer.from("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "base64"));
    const signature = signWebhook(SECRET, "cycle.paid:7", NOW, body);
    expect(signature).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(verifyWebhook(SECRET, headers(), body, 300, NOW)).toEqual(JSON.parse(body));
  });

  it("accept a delivery within the tolerance, and any one of several signatures (a secret being rotated)", () => {
    expect(verifyWebhook(SECRET, headers(), body, 300, NOW + 299).id).toBe("cycle.paid:7");
    const rotated = `v1,${Buffer.alloc(32).toString("base64")} ${signWebhook(SECRET, "cycle.paid:7", NOW, body)}`;
    expect(verifyWebhook(SECRET, headers({ "webhook-signature": rotated }), body, 300, NOW).id).toBe("cycle.paid:7");
    expect(verifyWebhook(SECRET, new Headers(headers()), body, 300, NOW).id).toBe("cycle.paid:7");
  });

  it("reject a tampered body", () => {
    const tampered = body.replace('"transfers":5', '"transfers":6');
    expect(rejection(() => verifyWebhook(SECRET, headers(), tampered, 300, NOW)).reason).toBe("bad_signature");
  });

  it("reject a signature made with another secret", () => {
    const other = "whsec_bm90IHRoZSByZWNlaXZlcidzIHNlY3JldCBhdCBhbGw=";
    const forged = headers({ "webhook-signature": signWebhook(other, "cycle.paid:7", NOW, body) });
    expect(rejection(() => verifyWebhook(SECRET, forged, body, 300, NOW)).reason).toBe("bad_signature");
  });

  it("reject an old timestamp, and one from the future, even with a valid signature", () => {
    const old = rejection(() => verifyWebhook(SECRET, headers(), body, 300, NOW + 301));
    expect(old).toEqual({ reason: "expired", message: "webhook-timestamp is 301 s from now, beyond the 300 s tolerance" });
    expect(rejection(() => verifyWebhook(SECRET, headers(), body, 300, NOW - 301)).reason).toBe("expired");
  });

  it("reject a timestamp or an id changed after signing, and missing headers", () => {
    expect(rejection(() => verifyWebhook(SECRET, headers({ "webhook-timestamp": String(NOW + 1) }), body, 300, NOW)).reason).toBe(
      "bad_signature",
    );
    expect(rejection(() => verifyWebhook(SECRET, headers({ "webhook-id": "cycle.paid:8" }), body, 300, NOW)).reason).toBe("bad_signature");
    expect(rejection(() => verifyWebhook(SECRET, headers({ "webhook-timestamp": "soon" }), body, 300, NOW)).reason).toBe("bad_timestamp");
    const { "webhook-signature": _, ...unsigned } = headers();
    expect(rejection(() => verifyWebhook(SECRET, unsigned, body, 300, NOW)).reason).toBe("missing_header");
  });

  it("reject a body whose id is not the signed webhook-id", () => {
    const other = body.replace('"id":"cycle.paid:7"', '"id":"cycle.paid:9"');
    const signed = headers({ "webhook-signature": signWebhook(SECRET, "cycle.paid:7", NOW, other) });
    expect(rejection(() => verifyWebhook(SECRET, signed, other, 300, NOW)).reason).toBe("bad_body");
  });
});

describe("webhook delivery", () => {
  it("retries a failed delivery with backoff until the receiver takes it, signed on every attempt", async () => {
    const receiver = await startWebhookReceiver(SECRET, [500, 503]);
    const lines: string[] = [];
    const sender = new WebhookSender({ urls: [receiver.url], secret: SECRET, backoffMs: 20, log: (l) => lines.push(l) });
    sender.notify("cycle.failed", { cycle: 3, code: "INDEXER_BEHIND", message: "the indexer is behind" });
    await sender.settled();
    expect(receiver.deliveries).toHaveLength(3);
    const events = receiver.verified();
    expect(events).toHaveLength(3);
    expect(new Set(events.map((e) => e.id)).size).toBe(1);
    expect(events[0]).toMatchObject({ type: "cycle.failed", data: { cycle: 3, code: "INDEXER_BEHIND" } });
    await receiver.close();
  });

  it("gives up after its attempts with a warning, and never throws to the caller", async () => {
    const receiver = await startWebhookReceiver(SECRET, [500, 500, 500]);
    const lines: string[] = [];
    const sender = new WebhookSender({
      urls: [receiver.url, "http://127.0.0.1:9/closed?token=receiver-token"],
      secret: SECRET,
      attempts: 3,
      backoffMs: 10,
      log: (l) => lines.push(l),
    });
    expect(() => sender.notify("payer.underfunded", { cycle: 4, payers: 1, transfers: 5 })).not.toThrow();
    await sender.settled();
    expect(receiver.deliveries).toHaveLength(3);
    const warnings = lines.filter((l) => l.startsWith("webhook not delivered"));
    expect(warnings).toHaveLength(2);
    // A receiver's token in the URL stays out of the log: only the origin is named.
    expect(lines.join("\n")).not.toContain("receiver-token");
    await receiver.close();
  });
});
