import { ContractFunctionExecutionError, BaseError as ViemBaseError } from "viem";
import { describe, expect, it } from "vitest";
import { CommandLineError } from "../src/cli/args.js";
import { InvalidPrivateKeyError } from "../src/eerc/errors.js";
import { BaseError, summarize } from "../src/errors.js";
import { ApiUnreachableError, HttpError } from "../src/http/errors.js";
import { InvalidMeterPricingError } from "../src/meter/pricing.js";
import { OverpaidError } from "../src/revenue/errors.js";
import { InvalidPricingError } from "../src/usage/errors.js";

describe("one error base", () => {
  it("every error carries its class name, a code, and the cause, field and status it was given", () => {
    const cause = new Error("ECONNREFUSED");
    const err = new ApiUnreachableError("http://127.0.0.1:1", "connection refused", { cause });
    expect(err).toBeInstanceOf(HttpError);
    expect(err).toBeInstanceOf(BaseError);
    expect(err.name).toBe("ApiUnreachableError");
    expect(err.code).toBe("API_UNREACHABLE");
    expect(err.cause).toBe(cause);
    expect(new InvalidPricingError("tiers", "must not be empty").field).toBe("tiers");
    expect(new InvalidPrivateKeyError().name).toBe("InvalidPrivateKeyError");
  });

  it("the CLI's command-line error and the meter's pricing error no longer share a name with another class", () => {
    expect(new CommandLineError("x").name).toBe("CommandLineError");
    expect(new InvalidMeterPricingError("x").name).not.toBe(new InvalidPricingError("f", "r").name);
  });
});

describe("summarize", () => {
  it("gives our errors' code and first line", () => {
    expect(summarize(new CommandLineError("missing command\nsee --help"))).toEqual({ code: "USAGE", message: "missing command" });
  });

  it("keeps an overpayment's earnings out of the summary, which logs and status answers show", () => {
    const err = new OverpaidError([{ providerId: "0xabc", earnedMicro: 5n, paidMicro: 7n }] as never);
    expect(err.message).toContain("earned 5");
    expect(summarize(err)).toEqual({ code: "OVERPAID", message: "1 provider(s) paid more than earned: 0xabc" });
  });

  it("uses viem's short message, not its multi-line details", () => {
    const inner = new ViemBaseError("execution reverted", { details: "long details" });
    const err = new ContractFunctionExecutionError(inner, { abi: [], functionName: "transfer" });
    const s = summarize(err);
    expect(s.code).toBe("ContractFunctionExecutionError");
    expect(s.message).not.toContain("\n");
    expect(s.message).toBe(err.shortMessage.split("\n")[0]);
  });

  it("takes anything thrown", () => {
    expect(summarize("plain text")).toEqual({ code: "ERROR", message: "plain text" });
    expect(summarize(Object.assign(new Error("boom\nstack"), { code: "ENOENT" }))).toEqual({ code: "ENOENT", message: "boom" });
  });
});
