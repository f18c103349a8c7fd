import { connectChain } from "../chain/clients.js";
import { readSettlementRecords, setSettlement } from "../deployment/settlement.js";
import { describeTerm, settlementSchedule, termAt } from "../revenue/schedule.js";
import type { CliIo, Command } from "./args.js";
import { type Identity, openDeployment, walletOf } from "./commands.js";
import { toJson } from "./output.js";

const day = (s: bigint) => (s === 0n ? "genesis" : new Date(Number(s) * 1000).toISOString().slice(0, 10));

/**
 * `settlement show`: the platform fee and pricing period the ProviderRegistry records, with their
 * history. `settlement set`: the operator records a change, applying from the next period.
 */
export async function runSettlement(cmd: Command, id: Identity | undefined, io: CliIo): Promise<void> {
  const { manifest: m, url, publicClient } = await openDeployment(cmd);
  const registry = m.contracts.providerRegistry;
  if (cmd.name === "settlement set") {
    const account = walletOf(id!, "settlement set");
    const chain = await connectChain(url);
    const effectiveFrom = cmd.values.from === undefined ? undefined : BigInt(Date.parse(`${cmd.values.from}T00:00:00Z`) / 1000);
    const r = await setSettlement({
      publicClient,
      wallet: chain.walletFor(account),
      registry,
      feeBps: cmd.settlement.feeBps,
      periodUnit: cmd.settlement.periodUnit,
      effectiveFrom,
    });
    const last = r.records.at(-1)!;
    io.stdout(
      cmd.json
        ? toJson({
            txHash: r.txHash,
            feeBps: last.feeBps,
            periodUnit: last.periodUnit,
            effectiveFrom: r.effectiveFrom,
            startsAt: r.startsAt,
          })
        : `recorded ${last.feeBps} bps, ${last.periodUnit === "month" ? "monthly" : "daily"} periods, applying from ${day(r.startsAt)} (tx ${r.txHash})`,
    );
    return;
  }
  const records = await readSettlementRecords({ publicClient, registry });
  const schedule = settlementSchedule(records);
  const { timestamp } = await publicClient.getBlock({ blockTag: "latest" });
  const inForce = schedule.some((t) => t.startsAt <= timestamp) ? termAt(schedule, timestamp) : undefined;
  if (cmd.json) {
    io.stdout(toJson({ registry, inForce: inForce ?? null, schedule }));
    return;
  }
  io.stdout(
    [
      `ProviderRegistry ${registry}`,
      inForce ? `in force: ${describeTerm(inForce)}` : "in force: nothing recorded applies yet",
      "history:",
      ...schedule.map(
        (t) =>
          `  ${t.index}. ${t.feeBps} bps, ${t.periodUnit === "month" ? "monthly" : "daily"} periods, effective from ${day(t.effectiveFrom)}, applies from ${day(t.startsAt)}`,
      ),
    ].join("\n"),
  );
}
