import { type Account, type Address, type Chain, erc20Abi, getAddress, type Hex, type Transport, type WalletClient } from "viem";
import type { EercClient } from "../eerc/client.js";
import { FundingTransactionError } from "./errors.js";

/**
 * How the revenue pool's USDC reaches the payers' encrypted balances, before each cycle:
 * - the pool's ERC-20 balance is the source of truth: what is in the pool wallet now is what is
 *   to be moved, and what is in a payer's wallet now is what that payer deposits. A step that
 *   has run shows on chain (the pool's balance fell, the payer's wallet is empty again), so a
 *   run cut short at any point is finished by the next one, and no USDC is deposited twice;
 * - the pool's balance is split evenly over the payers in their configured order (with several
 *   agents, the planning agent's payers first, then the running agents' other payers by address,
 *   each of which its own agent deposits), the remainder (fewer micro-USDC than payers) to the
 *   first (`splitEvenly`). The split is a function of the pool's public balance and the number of
 *   payers alone: a rule that looked at the payers' encrypted balances (the lowest first) would
 *   make each deposit tell how much a payer had paid out, which is the private part of the ledger;
 * - the pool wallet sends each payer that is not itself its part (a plain USDC transfer), then
 *   every payer deposits its whole wallet balance (eERC converter deposit: approve, deposit). A
 *   pool that is itself a payer keeps its own part and deposits it directly;
 * - a deposit's amount is public, like the pool's transfers it comes from: funding reveals only
 *   the pool's balance, which every fee payment into it already shows.
 */

/** Where the funding stops in a crash test (`PAYOUT_FAULT=<step>@<n>`, n counting pool transfers or deposits from 1). */
export const FUNDING_FAULT_STEPS = ["after_pool_transfer", "after_deposit"] as const;
export type FundingFaultStep = (typeof FUNDING_FAULT_STEPS)[number];

/**
 * `totalMicro` split evenly over `payers` parts, the remainder to the first: every part is
 * floor(total / payers), the first one total mod payers more, and the parts sum to the total.
 */
export function splitEvenly(totalMicro: bigint, payers: number): bigint[] {
  if (!Number.isInteger(payers) || payers < 1) throw new RangeError(`a split needs at least one payer, got ${payers}`);
  if (totalMicro < 0n) throw new RangeError("a split needs a non-negative amount");
  const n = BigInt(payers);
  const each = totalMicro / n;
  return Array.from({ length: payers }, (_, i) => (i === 0 ? each + (totalMicro % n) : each));
}

export type PoolWallet = WalletClient<Transport, Chain, Account>;

export type PoolFunding = {
  /** The ERC-20 (USDC) the pool receives and the eERC converts. */
  token: Address;
  /** The revenue pool's wallet: a payer's own wallet when the pool is a payer. */
  pool: PoolWallet;
};

export type FundingResult = {
  /** Plain USDC transfers from the pool to a payer. */
  transfers: Hex[];
  /** eERC deposits by payers. */
  deposits: Hex[];
};

const balanceOf = (payer: EercClient, token: Address, account: Address) =>
  payer.publicClient.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [account] });

/**
 * Moves the revenue pool's USDC into the payers' encrypted balances (the rules above). `at` is
 * called after each step (crash tests stop the process there).
 */
export async function fundFromPool(args: {
  funding: PoolFunding;
  payers: readonly EercClient[];
  /** Other agents' payers (several agents): each receives its part of the pool, and its own agent deposits it. */
  otherPayers?: readonly Address[];
  /** Leave the pool alone and only deposit the payers' wallet USDC (an agent joining a cycle another one planned). */
  depositOnly?: boolean;
  at?: (step: FundingFaultStep, n: number) => void;
}): Promise<FundingResult> {
  const { funding, payers } = args;
  const first = payers[0];
  if (!first) return { transfers: [], deposits: [] };
  const client = first.publicClient;
  const pool = getAddress(funding.pool.account.address);
  const out: FundingResult = { transfers: [], deposits: [] };

  const receivers = [...payers.map((p) => p.address), ...(args.otherPayers ?? [])];
  const poolMicro = args.depositOnly ? 0n : await balanceOf(first, funding.token, pool);
  const parts = poolMicro > 0n ? splitEvenly(poolMicro, receivers.length) : [];
  for (const [i, part] of parts.entries()) {
    const receiver = receivers[i]!;
    if (part === 0n || receiver === pool) continue;
    const hash = await funding.pool.writeContract({
      address: funding.token,
      abi: erc20Abi,
      functionName: "transfer",
      args: [receiver, part],
    });
    const receipt = await client.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new FundingTransactionError("transfer", hash);
    out.transfers.push(hash);
    args.at?.("after_pool_transfer", out.transfers.length);
  }

  for (const payer of payers) {
    const held = await balanceOf(payer, funding.token, payer.address);
    if (held === 0n) continue;
    const receipt = await payer.deposit({ token: funding.token, amount: held });
    out.deposits.push(receipt.transactionHash);
    args.at?.("after_deposit", out.deposits.length);
  }
  return out;
}
