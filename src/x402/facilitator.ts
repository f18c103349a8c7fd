/**
 * The facilitator that verifies and settles x402 payments in the server's own process, on the
 * chain, from a wallet of its own (it pays the gas; the payer signs only an authorization). It is
 * the packages' facilitator (`x402Facilitator` with the exact EVM scheme) on viem clients, plus
 * two things a meter needs from it:
 * - idempotent settlement: an authorization whose nonce is already used on chain, by a transfer
 *   from the payer to the payee of the authorized value, is reported settled with that
 *   transaction, so a settlement retried after a crash is never sent twice and never lost;
 * - chains without Multicall3 (anvil): the scheme's diagnostic reads go through Multicall3 when
 *   a verification fails; where none is deployed they are made one by one, so a refusal still
 *   names its reason (insufficient balance, nonce already used).
 */
import { x402Facilitator } from "@x402/core/facilitator";
import type { PaymentPayload, PaymentRequirements, SettleResponse, VerifyResponse } from "@x402/core/types";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { registerExactEvmScheme } from "@x402/evm/exact/facilitator";
import {
  type Abi,
  type Account,
  type Address,
  type Chain,
  getAddress,
  type Hex,
  isAddressEqual,
  type PublicClient,
  parseAbi,
  parseEventLogs,
  type Transport,
  type WalletClient,
} from "viem";
import type { Eip3009Authorization } from "./mcp.js";
import { networkOf } from "./requirements.js";

/** What the meter needs of a facilitator: the packages' `x402Facilitator` and `HTTPFacilitatorClient` both fit. */
export interface PaymentFacilitator {
  verify(payload: PaymentPayload, requirements: PaymentRequirements): Promise<VerifyResponse>;
  /**
   * Must be idempotent per authorization: settling a payload whose transfer is already on chain
   * answers success with that transaction (the in-process facilitator does).
   */
  settle(payload: PaymentPayload, requirements: PaymentRequirements): Promise<SettleResponse>;
}

export type InProcessFacilitatorOptions = {
  publicClient: PublicClient;
  /** The facilitator's wallet: sends `transferWithAuthorization` and pays its gas. */
  wallet: WalletClient<Transport, Chain, Account>;
  /** How far back (blocks) a settled authorization is looked for (default 100,000). */
  lookbackBlocks?: bigint;
  /** Receipt wait bound (default 60 s). */
  confirmationTimeoutMs?: number;
};

export type InProcessFacilitator = PaymentFacilitator & { readonly address: Address; readonly network: `eip155:${number}` };

/** The errors an EIP-3009 USDC reverts with, so a failed send names them (TestUSDC's, which mirror USDC's checks). */
const AUTHORIZATION_ERRORS = parseAbi([
  "error AuthorizationNotYetValid(uint256 validAfter, uint256 timestamp)",
  "error AuthorizationExpired(uint256 validBefore, uint256 timestamp)",
  "error AuthorizationUsedOrCanceled(address authorizer, bytes32 nonce)",
  "error InvalidAuthorizationSignature(address authorizer)",
  "error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed)",
]);

const TRANSFER_EVENTS = parseAbi([
  "event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce)",
  "event Transfer(address indexed from, address indexed to, uint256 value)",
]);

const MULTICALL3: Address = "0xcA11bde05977b3631167028862bE2a173976CA11";

/**
 * The transaction that spent `authorization` paying `payTo`, if one is on chain within the last
 * `lookbackBlocks`: its AuthorizationUsed log, in a transaction that moved the authorized value
 * from the payer to the payee. A cancelled authorization has no such transaction.
 */
export async function findAuthorizationTransfer(
  publicClient: PublicClient,
  asset: Address,
  authorization: Pick<Eip3009Authorization, "from" | "to" | "value" | "nonce">,
  lookbackBlocks = 100_000n,
): Promise<Hex | undefined> {
  const head = await publicClient.getBlockNumber();
  const logs = await publicClient.getLogs({
    address: asset,
    event: TRANSFER_EVENTS[0],
    args: { authorizer: authorization.from, nonce: authorization.nonce },
    fromBlock: head > lookbackBlocks ? head - lookbackBlocks : 0n,
    toBlock: head,
  });
  for (const log of logs) {
    const receipt = await publicClient.getTransactionReceipt({ hash: log.transactionHash });
    const transfers = parseEventLogs({ abi: TRANSFER_EVENTS, eventName: "Transfer", logs: receipt.logs }).filter((l) =>
      isAddressEqual(l.address, asset),
    );
    const paid = transfers.some(
      (t) =>
        isAddressEqual(t.args.from, authorization.from) &&
        isAddressEqual(t.args.to, authorization.to) &&
        t.args.value === authorization.value,
    );
    if (receipt.status === "success" && paid) return log.transactionHash;
  }
  return undefined;
}

function authorizationOfPayload(payload: PaymentPayload): Eip3009Authorization | undefined {
  const auth = (payload.payload as { authorization?: Record<string, string> }).authorization;
  if (!auth || typeof auth.from !== "string" || typeof auth.to !== "string" || typeof auth.nonce !== "string") return undefined;
  try {
    return {
      from: getAddress(auth.from),
      to: getAddress(auth.to),
      value: BigInt(auth.value!),
      validAfter: BigInt(auth.validAfter!),
      validBefore: BigInt(auth.validBefore!),
      nonce: auth.nonce as Hex,
    };
  } catch {
    return undefined;
  }
}

export function createInProcessFacilitator(options: InProcessFacilitatorOptions): InProcessFacilitator {
  const { publicClient, wallet } = options;
  const account = wallet.account;
  const network = networkOf(wallet.chain.id);
  let multicallDeployed: Promise<boolean> | undefined;
  const hasMulticall = () => {
    multicallDeployed ??= publicClient.getCode({ address: MULTICALL3 }).then((code) => code !== undefined && code !== "0x");
    return multicallDeployed;
  };

  const readContract = async (args: { address: Address; abi: readonly unknown[]; functionName: string; args?: readonly unknown[] }) => {
    if (isAddressEqual(args.address, MULTICALL3) && args.functionName === "tryAggregate" && !(await hasMulticall())) {
      const calls = args.args?.[1] as readonly { target: Address; callData: Hex }[];
      return Promise.all(
        calls.map(async ({ target, callData }) => {
          try {
            const { data } = await publicClient.call({ to: target, data: callData });
            return { success: true, returnData: data ?? "0x" };
          } catch {
            return { success: false, returnData: "0x" as Hex };
          }
        }),
      );
    }
    return publicClient.readContract({ ...args, abi: args.abi as Abi } as never);
  };

  const signer = toFacilitatorEvmSigner(
    {
      address: account.address,
      readContract,
      verifyTypedData: (args) => publicClient.verifyTypedData(args as never),
      writeContract: (args) =>
        wallet.writeContract({ ...args, abi: [...(args.abi as Abi), ...AUTHORIZATION_ERRORS], account, chain: wallet.chain } as never),
      sendTransaction: (args) => wallet.sendTransaction({ ...args, account, chain: wallet.chain } as never),
      waitForTransactionReceipt: (args) => publicClient.waitForTransactionReceipt(args),
      getCode: (args) => publicClient.getCode(args),
    },
    { confirmationTimeoutMs: options.confirmationTimeoutMs ?? 60_000 },
  );
  const facilitator = registerExactEvmScheme(new x402Facilitator(), { signer, networks: network });

  const alreadySettled = async (payload: PaymentPayload, requirements: PaymentRequirements): Promise<SettleResponse | undefined> => {
    const authorization = authorizationOfPayload(payload);
    if (!authorization || !isAddressEqual(authorization.to, getAddress(requirements.payTo))) return undefined;
    if (authorization.value !== BigInt(requirements.amount)) return undefined;
    const tx = await findAuthorizationTransfer(publicClient, getAddress(requirements.asset), authorization, options.lookbackBlocks);
    return tx ? { success: true, transaction: tx, network: requirements.network, payer: authorization.from } : undefined;
  };

  return {
    address: account.address,
    network,
    verify: (payload, requirements) => facilitator.verify(payload, requirements),
    async settle(payload, requirements) {
      let response: SettleResponse;
      try {
        response = await facilitator.settle(payload, requirements);
      } catch (err) {
        const settled = await alreadySettled(payload, requirements);
        if (settled) return settled;
        throw err;
      }
      if (response.success) return response;
      return (await alreadySettled(payload, requirements)) ?? response;
    },
  };
}
