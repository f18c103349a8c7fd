/** The pure parts of paid tool calls: requirements, the MCP wire format, settlement outcomes and paid call records. */
import { describe, expect, it } from "vitest";
import { InvalidCallRecordError } from "../src/usage/errors.js";
import { type CallRecord, callRecordFromJson, callRecordLeaf, callRecordToJson, validateCallRecord } from "../src/usage/record.js";
import {
  acceptsRequirements,
  exactPaymentOf,
  InvalidPaymentPayloadError,
  InvalidPaymentTermsError,
  type PaymentTerms,
  paymentRequiredOf,
  paymentRequiredResult,
  paymentRequirementsFor,
  settlementOutcome,
  X402_PAYMENT_META,
} from "../src/x402/index.js";

const USDC = "0x5425890298aed601595a70AB815c96711a31Bc65";
const POOL = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
const TERMS: PaymentTerms = { chainId: 43113, asset: USDC, payTo: POOL, domain: { name: "USD Coin", version: "2" }, surchargeMicro: 250n };
const NONCE = `0x${"ab".repeat(32)}` as const;
const TX = `0x${"cd".repeat(32)}` as const;

describe("payment requirements", () => {
  it("ask for the provider's price plus the surcharge, paid to the pool in USDC on eip155:<chainId>, with the token's EIP-712 domain", () => {
    // 1,500 (provider) + 250 (surcharge) = 1,750 micro-USDC.
    expect(paymentRequirementsFor(TERMS, 1_500n)).toEqual({
      scheme: "exact",
      network: "eip155:43113",
      asset: USDC,
      amount: "1750",
      payTo: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
      maxTimeoutSeconds: 60,
      extra: { name: "USD Coin", version: "2" },
    });
  });

  it("a free call with a surcharge costs the surcharge; without one it needs no payment", () => {
    expect(paymentRequirementsFor(TERMS, 0n)?.amount).toBe("250");
    expect(paymentRequirementsFor({ ...TERMS, surchargeMicro: 0n }, 0n)).toBeUndefined();
  });

  it("refuse bad terms with the field at fault", () => {
    const field = (terms: PaymentTerms, price = 1n) => {
      try {
        paymentRequirementsFor(terms, price);
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidPaymentTermsError);
        return (e as InvalidPaymentTermsError).field;
      }
      return "accepted";
    };
    expect(field({ ...TERMS, chainId: 0 })).toBe("chainId");
    expect(field({ ...TERMS, asset: "0x1234" as never })).toBe("asset");
    expect(field({ ...TERMS, payTo: "pool" as never })).toBe("payTo");
    expect(field({ ...TERMS, domain: { name: "", version: "2" } })).toBe("domain.name");
    expect(field({ ...TERMS, surchargeMicro: -1n })).toBe("surchargeMicro");
    expect(field({ ...TERMS, maxTimeoutSeconds: 1.5 })).toBe("maxTimeoutSeconds");
    expect(field(TERMS, -1n)).toBe("priceMicro");
  });

  it("a payload accepting another amount, payee or asset does not pay for this call", () => {
    const offered = paymentRequirementsFor(TERMS, 1_500n)!;
    expect(acceptsRequirements({ ...offered, payTo: offered.payTo.toLowerCase() }, offered)).toBe(true);
    expect(acceptsRequirements({ ...offered, amount: "250" }, offered)).toBe(false);
    expect(acceptsRequirements({ ...offered, payTo: USDC }, offered)).toBe(false);
    expect(acceptsRequirements({ ...offered, network: "eip155:43114" }, offered)).toBe(false);
  });
});

describe("x402 over MCP", () => {
  const required = {
    x402Version: 2,
    error: "payment required",
    resource: { url: "mcp://tool/t" },
    accepts: [paymentRequirementsFor(TERMS, 1n)!],
  };

  it("a payment-required result carries PaymentRequired as structuredContent and as JSON text; other results carry none", () => {
    const result = paymentRequiredResult(required);
    expect(result.isError).toBe(true);
    expect(JSON.parse((result.content[0] as { text: string }).text)).toEqual(required);
    expect(paymentRequiredOf(result)).toEqual(required);
    expect(paymentRequiredOf({ ...result, structuredContent: undefined })).toEqual(required);
    expect(paymentRequiredOf({ content: [{ type: "text", text: "Error: 500" }], isError: true })).toBeUndefined();
    expect(paymentRequiredOf({ ...result, isError: false })).toBeUndefined();
  });

  const payload = {
    x402Version: 2,
    accepted: required.accepts[0],
    payload: {
      signature: `0x${"11".repeat(65)}`,
      authorization: { from: POOL, to: POOL, value: "1750", validAfter: "0", validBefore: "1900000000", nonce: NONCE },
    },
  };

  it("reads an exact EIP-3009 payment from _meta, absent when there is none, and names the first bad field of a malformed one", () => {
    expect(exactPaymentOf(undefined)).toBeUndefined();
    expect(exactPaymentOf({})).toBeUndefined();
    expect(exactPaymentOf({ [X402_PAYMENT_META]: payload })?.authorization).toEqual({
      from: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
      to: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
      value: 1_750n,
      validAfter: 0n,
      validBefore: 1_900_000_000n,
      nonce: NONCE,
    });
    const fieldOf = (value: unknown) => {
      try {
        exactPaymentOf({ [X402_PAYMENT_META]: value });
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidPaymentPayloadError);
        return (e as InvalidPaymentPayloadError).field;
      }
      return "accepted";
    };
    const auth = payload.payload.authorization;
    expect(fieldOf("0xdead")).toBe("payload");
    expect(fieldOf({ ...payload, x402Version: 1 })).toBe("x402Version");
    expect(fieldOf({ ...payload, accepted: { ...payload.accepted, amount: 1750 } })).toBe("accepted.amount");
    expect(fieldOf({ ...payload, payload: { ...payload.payload, signature: "sig" } })).toBe("payload.signature");
    expect(fieldOf({ ...payload, payload: { ...payload.payload, authorization: { ...auth, value: "1.5" } } })).toBe(
      "payload.authorization.value",
    );
    expect(fieldOf({ ...payload, payload: { ...payload.payload, authorization: { ...auth, nonce: "0x01" } } })).toBe(
      "payload.authorization.nonce",
    );
    expect(fieldOf({ ...payload, payload: { ...payload.payload, authorization: { ...auth, from: "me" } } })).toBe(
      "payload.authorization.from",
    );
  });
});

describe("settlement outcomes", () => {
  const response = (r: object) => ({ response: { success: false, transaction: "", network: "eip155:43113" as const, ...r } });

  it("a success with a transaction hash is settled; a success without one is not", () => {
    expect(settlementOutcome(response({ success: true, transaction: TX }))).toEqual({ status: "settled", txHash: TX });
    expect(settlementOutcome(response({ success: true })).status).toBe("pending");
  });

  it("a failure of the payment itself is final; a thrown error, a pending broadcast or an unknown reason is retried", () => {
    for (const reason of [
      "invalid_exact_evm_insufficient_balance",
      "invalid_exact_evm_signature",
      "invalid_exact_evm_payload_authorization_valid_before",
    ]) {
      expect(settlementOutcome(response({ errorReason: reason }))).toEqual({ status: "refused", reason });
    }
    expect(settlementOutcome({ error: new Error("ECONNRESET") })).toEqual({ status: "pending", reason: "ECONNRESET" });
    expect(settlementOutcome(response({ errorReason: "settlement_pending", transaction: TX })).status).toBe("pending");
    expect(settlementOutcome(response({ errorReason: "invalid_exact_evm_transaction_failed" })).status).toBe("pending");
    expect(settlementOutcome(response({})).status).toBe("pending");
  });
});

describe("paid call records", () => {
  const base: CallRecord = {
    eventId: "e1",
    provider: "finance",
    tool: "getQuote",
    startedAt: 1,
    endedAt: 2,
    durationMs: 1,
    outcome: "ok",
    requestBytes: 10,
    responseBytes: 20,
    billable: true,
    priceMicro: 2_500n,
  };
  const settled: CallRecord = { ...base, payment: { payer: POOL, amountMicro: 2_750n, nonce: NONCE, txHash: TX, status: "settled" } };
  const reasonOf = (value: unknown) => {
    try {
      validateCallRecord(value);
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidCallRecordError);
      return `${(e as InvalidCallRecordError).field} ${(e as InvalidCallRecordError).reason}`;
    }
    return "valid";
  };

  it("records without a payment stay valid, and a payment does not change the leaf", () => {
    expect(validateCallRecord(base)).toEqual(base);
    expect(callRecordLeaf(settled)).toBe(callRecordLeaf(base));
  });

  it("round-trip through JSON with amounts as decimal strings, the payer checksummed", () => {
    const json = JSON.parse(JSON.stringify(callRecordToJson(settled)));
    expect(json.payment.amountMicro).toBe("2750");
    expect(callRecordFromJson(json)).toEqual({
      ...settled,
      payment: { ...settled.payment, payer: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" },
    });
  });

  it("a settled payment is a billed call, and a billed paid call is a settled one", () => {
    expect(reasonOf({ ...settled, billable: false, priceMicro: 0n })).toBe(
      "billable must be true for a settled payment: a settled payment is a billed call",
    );
    expect(reasonOf({ ...settled, payment: { ...settled.payment, status: "refused", txHash: null } })).toBe(
      "billable must be false for a refused payment: only a settled payment is billed",
    );
    expect(reasonOf({ ...settled, payment: { ...settled.payment, txHash: null } })).toBe(
      "payment.txHash must be set for a settled payment",
    );
  });

  it("an unpaid attempt names no payer or nonce; a pending settlement must name both", () => {
    const unpaid = { payer: null, amountMicro: 2_750n, nonce: null, txHash: null, status: "unpaid" };
    expect(reasonOf({ ...base, outcome: "tool_error", billable: false, priceMicro: 0n, payment: unpaid })).toBe("valid");
    expect(reasonOf({ ...base, billable: false, priceMicro: 0n, payment: { ...unpaid, status: "settle_pending" } })).toBe(
      "payment a pending settlement names its payer and nonce",
    );
  });

  it("refuse malformed payments by field", () => {
    const p = settled.payment!;
    expect(reasonOf({ ...settled, payment: { ...p, status: "paid" } })).toMatch(/^payment.status must be one of/);
    expect(reasonOf({ ...settled, payment: { ...p, amountMicro: 2750 } })).toBe("payment.amountMicro must be a bigint (micro-USDC)");
    expect(reasonOf({ ...settled, payment: { ...p, nonce: "0x12" } })).toBe("payment.nonce must be 32 bytes of hex or null");
    expect(reasonOf({ ...settled, payment: { ...p, payer: "alice" } })).toBe("payment.payer must be an address or null");
    expect(reasonOf({ ...settled, payment: { ...p, memo: "x" } })).toBe("payment.memo is not a payment field");
  });
});
