import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { ConfigError, operationsSettings } from "../src/config/index.js";
import { createLogger, messageLine, prettyLine, toLogger } from "../src/log.js";
import { Histogram, renderMetrics } from "../src/util/prometheus.js";

// Logs, the settings for them and for webhooks, and the Prometheus text both /metrics answers share.

function capture(): { stream: Writable & { isTTY?: boolean }; lines: () => string[] } {
  let text = "";
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += chunk;
      done();
    },
  });
  return { stream, lines: () => text.split("\n").filter((l) => l.length > 0) };
}

describe("logs", () => {
  it("are JSON lines with structured fields when they do not go to a terminal", () => {
    const out = capture();
    createLogger("agent", { destination: out.stream }).info({ cycle: 3, transfers: 5, ms: 10450 }, "cycle paid");
    const [line] = out.lines();
    expect(JSON.parse(line!)).toMatchObject({ level: 30, name: "agent", msg: "cycle paid", cycle: 3, transfers: 5, ms: 10450 });
    expect(JSON.parse(line!).time).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it("are one readable line each on a terminal, or with format pretty", () => {
    const out = capture();
    out.stream.isTTY = true;
    createLogger("api", { destination: out.stream }).warn({ component: "relayer", nonce: 7, note: "two words" }, "nonce refused");
    createLogger("api", { destination: capture().stream, format: "pretty" });
    expect(out.lines()).toHaveLength(1);
    expect(out.lines()[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}api: nonce refused component=relayer nonce=7 note="two words"$/);
    expect(prettyLine({ level: 50, time: "2027-01-15T08:00:01.250Z", name: "agent", msg: "ALERT", pid: 1, hostname: "h" })).toBe(
      "08:00:01.250 ERROR agent: ALERT",
    );
  });

  it("censor keys, secrets, signatures and amounts that reach a record by mistake", () => {
    const out = capture();
    const key = `0x${"ab".repeat(32)}`;
    createLogger("agent", { destination: out.stream }).info(
      { privateKey: key, transfer: { amount: "123456", to: "0x1" }, secret: "whsec_x", signature: "0xsig" },
      "oops",
    );
    const text = out.lines().join("\n");
    for (const hidden of [key, "123456", "whsec_x", "0xsig"]) expect(text).not.toContain(hidden);
    expect(JSON.parse(text).transfer).toEqual({ amount: "[redacted]", to: "0x1" });
  });

  it("respect the level, and reach a line callback as message then fields", () => {
    const out = capture();
    const quiet = createLogger("agent", { destination: out.stream, level: "warn" });
    quiet.info({}, "not shown");
    quiet.warn({}, "shown");
    expect(out.lines().map((l) => JSON.parse(l).msg)).toEqual(["shown"]);
    const lines: string[] = [];
    const log = toLogger((l) => lines.push(l));
    log.error({ payer: "0xabc", block: 12 }, "ALERT payer transfer");
    log.debug({}, "hidden");
    expect(lines).toEqual(["ALERT payer transfer payer=0xabc block=12"]);
    expect(messageLine("m", { n: 10n, list: [1, 2], skip: undefined })).toBe("m n=10 list=[1,2]");
  });
});

describe("operations settings", () => {
  const error = (env: Record<string, string>) => {
    try {
      operationsSettings(env);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return { field: (e as ConfigError).field, message: (e as ConfigError).message };
    }
    throw new Error("accepted");
  };
  const secret = "s".repeat(24);

  it("read LOG_FORMAT, LOG_LEVEL and the webhook targets", () => {
    expect(operationsSettings({})).toEqual({ log: { format: undefined, level: undefined } });
    expect(
      operationsSettings({
        LOG_FORMAT: "pretty",
        LOG_LEVEL: "debug",
        WEBHOOK_URLS: "https://a.example/h, https://b.example/h",
        WEBHOOK_SECRET: secret,
      }),
    ).toEqual({
      log: { format: "pretty", level: "debug" },
      webhooks: { urls: ["https://a.example/h", "https://b.example/h"], secret },
    });
  });

  it("refuse a bad setting, naming it", () => {
    expect(error({ LOG_FORMAT: "xml" })).toEqual({ field: "LOG_FORMAT", message: 'LOG_FORMAT must be one of "json", "pretty", got "xml"' });
    expect(error({ LOG_LEVEL: "loud" }).field).toBe("LOG_LEVEL");
    expect(error({ WEBHOOK_URLS: "https://a.example/h" })).toEqual({
      field: "WEBHOOK_SECRET",
      message: "WEBHOOK_SECRET must be set with WEBHOOK_URLS: every delivery is signed",
    });
    expect(error({ WEBHOOK_URLS: "https://a.example/h", WEBHOOK_SECRET: "short" }).field).toBe("WEBHOOK_SECRET");
    expect(error({ WEBHOOK_URLS: "https://a.example/h", WEBHOOK_SECRET: "whsec_c2hvcnQ=" }).field).toBe("WEBHOOK_SECRET");
  });

  it("never echo a webhook URL, which may carry a receiver's token", () => {
    const e = error({ WEBHOOK_URLS: "ftp://a.example/h?token=receiver-token", WEBHOOK_SECRET: secret });
    expect(e.field).toBe("WEBHOOK_URLS");
    expect(e.message).not.toContain("receiver-token");
  });
});

describe("Prometheus text", () => {
  it("renders counters, gauges with escaped labels, and cumulative histograms", () => {
    const h = new Histogram([1, 2]);
    for (const v of [0.5, 1.5, 3]) h.observe(v);
    expect(
      renderMetrics([
        { name: "x_total", help: "Xs.", type: "counter", samples: [{ labels: { route: '/a"b', outcome: "ok" }, value: 2 }] },
        { name: "y", help: "Y.", type: "gauge", samples: [] },
        { name: "z_seconds", help: "Z.", type: "histogram", histogram: h },
      ]),
    ).toBe(
      [
        "# HELP x_total Xs.",
        "# TYPE x_total counter",
        'x_total{route="/a\\"b",outcome="ok"} 2',
        "# HELP y Y.",
        "# TYPE y gauge",
        "# HELP z_seconds Z.",
        "# TYPE z_seconds histogram",
        'z_seconds_bucket{le="1"} 1',
        'z_seconds_bucket{le="2"} 2',
        'z_seconds_bucket{le="+Inf"} 3',
        "z_seconds_sum 5",
        "z_seconds_count 3",
        "",
      ].join("\n"),
    );
  });
});
