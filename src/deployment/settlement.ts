import {
  type Account,
  type Address,
  type Chain,
  ContractFunctionRevertedError,
  type Hex,
  type PublicClient,
  type Transport,
  BaseError as ViemBaseError,
  type WalletClient,
} from "viem";
import { ProviderRegistryAbi } from "../../abis/ProviderRegistryAbi.js";
import { BaseError } from "../errors.js";
import {
  PERIOD_UNIT_CODES,
  periodUnitOfCode,
  type SettlementRecord,
  type SettlementTerm,
  settlementSchedule,
  termAt,
} from "../revenue/schedule.js";
import { nextPeriodStart, type PeriodUnit } from "../usage/period.js";

/** The ProviderRegistry refused a settlement record; `message` names its custom error. */
export class SettlementChangeError extends BaseError {
  readonly code = "SETTLEMENT_CHANGE_REFUSED";
}

export type SettlementSettings = { feeBps: number; periodUnit: PeriodUnit };

/** What a deployment records when told nothing: a 10% platform fee, monthly pricing periods. */
export const DEFAULT_SETTLEMENT: SettlementSettings = { feeBps: 1000, periodUnit: "month" };

/**
 * The settlement history as the ProviderRegistry stores it, read with its views (no log range
 * needed). Records are in the order they were made; their position is that order.
 */
export async function readSettlementRecords(args: { publicClient: PublicClient; registry: Address }): Promise<SettlementRecord[]> {
  const read = { address: args.registry, abi: ProviderRegistryAbi } as const;
  const count = await args.publicClient.readContract({ ...read, functionName: "settlementCount" });
  const out: SettlementRecord[] = [];
  for (let i = 0n; i < count; i++) {
    const r = await args.publicClient.readContract({ ...read, functionName: "settlementAt", args: [i] });
    out.push({
      feeBps: r.feeBps,
      periodUnit: periodUnitOfCode(r.periodUnit),
      effectiveFrom: r.effectiveFrom,
      blockNumber: 0n,
      logIndex: Number(i),
    });
  }
  return out;
}

/** The record in force at the latest block, or undefined when nothing is recorded or nothing applies yet. */
export async function settlementInForce(args: { publicClient: PublicClient; registry: Address }): Promise<SettlementTerm | undefined> {
  const records = await readSettlementRecords(args);
  const { timestamp } = await args.publicClient.getBlock({ blockTag: "latest" });
  const schedule = settlementSchedule(records);
  return schedule.some((t) => t.startsAt <= timestamp) ? termAt(schedule, timestamp) : undefined;
}

export type SetSettlementParameters = Partial<SettlementSettings> & {
  publicClient: PublicClient;
  /** The registry owner's wallet (the operator). */
  wallet: WalletClient<Transport, Chain, Account>;
  registry: Address;
  /**
   * Unix seconds, a UTC day start in the future. Default: the start of the next period under the
   * unit in force (0, from genesis, for a registry with no record yet).
   */
  effectiveFrom?: bigint;
};

export type SetSettlementReturnType = {
  txHash: Hex;
  effectiveFrom: bigint;
  /** When the record starts to apply: the first period start at or after `effectiveFrom` under both units. */
  startsAt: bigint;
  /** The whole history, this record last. */
  records: SettlementRecord[];
};

/**
 * Records new settlement settings as the registry owner, applying from the next pricing period by
 * default; a setting left out keeps the latest record's. The call is simulated first, so a refusal (a fee over 10,000 bps, an effectiveFrom that
 * is not a future UTC day start or not after the last record's, a wallet that is not the owner)
 * throws SettlementChangeError naming the contract's error, and nothing is sent.
 */
export async function setSettlement(args: SetSettlementParameters): Promise<SetSettlementReturnType> {
  const records = await readSettlementRecords(args);
  // A setting not given keeps the latest record's (the first record needs both).
  const latest = records.at(-1);
  const feeBps = args.feeBps ?? latest?.feeBps;
  const periodUnit = args.periodUnit ?? latest?.periodUnit;
  if (feeBps === undefined || periodUnit === undefined)
    throw new SettlementChangeError("the first settlement record needs both the fee and the pricing period");
  let effectiveFrom = args.effectiveFrom;
  if (effectiveFrom === undefined) {
    if (records.length === 0) effectiveFrom = 0n;
    else {
      const { timestamp } = await args.publicClient.getBlock({ blockTag: "latest" });
      const schedule = settlementSchedule(records);
      // Before the first record applies, its own unit is the one the next period is counted in.
      const unit = (schedule.some((t) => t.startsAt <= timestamp) ? termAt(schedule, timestamp) : schedule[0]!).periodUnit;
      effectiveFrom = nextPeriodStart(timestamp, unit);
      const last = schedule.at(-1)!;
      if (effectiveFrom <= last.effectiveFrom) effectiveFrom = nextPeriodStart(last.effectiveFrom, last.periodUnit);
    }
  }
  const call = {
    address: args.registry,
    abi: ProviderRegistryAbi,
    functionName: "setSettlement",
    args: [feeBps, PERIOD_UNIT_CODES[periodUnit], effectiveFrom],
    account: args.wallet.account,
  } as const;
  try {
    await args.publicClient.simulateContract(call);
  } catch (e) {
    const revert = e instanceof ViemBaseError ? e.walk((x) => x instanceof ContractFunctionRevertedError) : null;
    if (!(revert instanceof ContractFunctionRevertedError) || !revert.data?.errorName) throw e;
    const detail = revert.data.args?.length ? `(${revert.data.args.map(String).join(", ")})` : "";
    throw new SettlementChangeError(`the ProviderRegistry refuses the settlement record: ${revert.data.errorName}${detail}`, { cause: e });
  }
  const txHash = await args.wallet.writeContract(call);
  const receipt = await args.publicClient.waitForTransactionReceipt({ hash: txHash });
  if (receipt.status !== "success") throw new SettlementChangeError(`setSettlement reverted (${txHash})`);
  const all = [...records, { feeBps, periodUnit, effectiveFrom, blockNumber: 0n, logIndex: records.length }];
  return { txHash, effectiveFrom, startsAt: settlementSchedule(all).at(-1)!.startsAt, records: all };
}
