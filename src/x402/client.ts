/**
 * The agent side: an MCP client that pays for tool calls. It calls the tool; when the result asks
 * for payment it signs an EIP-3009 authorization for the offered requirement with the agent's
 * wallet (the packages' exact EVM client scheme) and calls again with the payload in `_meta`.
 * Once a tool has quoted its terms, later calls pay up front with them.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { x402Client } from "@x402/core/client";
import type { Network, PaymentPayload, PaymentRequired, SettleResponse } from "@x402/core/types";
import type { ClientEvmSigner } from "@x402/evm";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import type { Address } from "viem";
import { PaymentFailedError } from "./errors.js";
import { paymentRequiredOf, paymentResponseOf, X402_PAYMENT_META } from "./mcp.js";

export type ToolPayerOptions = {
  /** The agent's wallet: a viem local account (address and `signTypedData`) is enough. */
  signer: ClientEvmSigner;
  /** What the agent pays with, and the most it pays for one call, in the asset's atomic units (micro-USDC). */
  assets: readonly { network: `eip155:${number}`; asset: Address; maxAmountMicro: bigint }[];
};

export type PaidToolCall = {
  result: CallToolResult;
  /** The settlement the server returned, when the call was paid. */
  payment?: SettleResponse;
  /** The payload sent, when the call was paid. */
  paymentPayload?: PaymentPayload;
};

export type ToolPayer = {
  /** A payment payload for a payment-required answer (the first requirement the agent accepts). */
  createPayment(required: PaymentRequired): Promise<PaymentPayload>;
  /** Calls a tool, paying when asked; a refused payment throws `PaymentFailedError`. */
  callTool(client: Client, params: { name: string; arguments?: Record<string, unknown> }): Promise<PaidToolCall>;
};

export function createToolPayer(options: ToolPayerOptions): ToolPayer {
  const payer = new x402Client();
  const networks = [...new Set(options.assets.map((a) => a.network))] as Network[];
  registerExactEvmScheme(payer, { signer: options.signer, networks });
  payer.setSpendControls({
    maxAmountPerPayment: false,
    allowedAssets: options.assets.map((a) => ({ network: a.network, asset: a.asset, maxAmountPerPayment: a.maxAmountMicro.toString() })),
  });
  const acceptable = (required: PaymentRequired): PaymentRequired => ({
    ...required,
    accepts: required.accepts.filter((r) =>
      options.assets.some(
        (a) => a.network === r.network && a.asset.toLowerCase() === r.asset.toLowerCase() && BigInt(r.amount) <= a.maxAmountMicro,
      ),
    ),
  });

  const createPayment = async (required: PaymentRequired): Promise<PaymentPayload> => {
    const offered = acceptable(required);
    if (offered.accepts.length === 0) throw new PaymentFailedError("no payment requirement the agent accepts (asset, network or amount)");
    return payer.createPaymentPayload(offered);
  };

  // The last terms each tool asked for: later calls pay up front, so a paid call is one request
  // (and one record); a tool whose price has moved answers with new terms and is paid again.
  const quoted = new Map<string, PaymentRequired>();
  const sameTerms = (a: PaymentRequired, b: PaymentRequired) => JSON.stringify(a.accepts) === JSON.stringify(b.accepts);
  const pay = async (client: Client, params: { name: string; arguments?: Record<string, unknown> }, required: PaymentRequired) => {
    const paymentPayload = await createPayment(required);
    const result = (await client.callTool({ ...params, _meta: { [X402_PAYMENT_META]: paymentPayload } })) as CallToolResult;
    return { result, paymentPayload };
  };

  return {
    createPayment,
    async callTool(client, params) {
      const known = quoted.get(params.name);
      let sent: { result: CallToolResult; paymentPayload?: PaymentPayload } = known
        ? await pay(client, params, known)
        : { result: (await client.callTool(params)) as CallToolResult };
      let required = paymentRequiredOf(sent.result);
      if (required && !(known && sameTerms(known, required))) {
        quoted.set(params.name, required);
        sent = await pay(client, params, required);
        required = paymentRequiredOf(sent.result);
      }
      if (required) throw new PaymentFailedError(`payment refused: ${required.error ?? "no reason given"}`, required.error);
      const response = paymentResponseOf(sent.result);
      // A free call (a free quota, say) ran without using the payment: nothing was paid.
      if (!response) return { result: sent.result };
      return { result: sent.result, payment: response, paymentPayload: sent.paymentPayload };
    },
  };
}
