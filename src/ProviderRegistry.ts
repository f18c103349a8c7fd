import { type Context, ponder } from "ponder:registry";
import { provider, providerChange, settlementChange } from "ponder:schema";
import type { Hex } from "viem";
import type { ProviderChangeKind } from "../ponder.schema.js";
import { eventColumns, metaOf } from "./indexer/ledger.js";
import { pricingColumns } from "./indexer/usage.js";
import { periodUnitOfCode } from "./revenue/schedule.js";

type ProviderRow = typeof provider.$inferSelect;

/** Appends the provider's registration as it stands after an event to its history. */
async function recordChange(
  db: Context["db"],
  row: ProviderRow,
  event: { id: string },
  kind: ProviderChangeKind,
  previousPayoutAccount: Hex | null = null,
) {
  await db.insert(providerChange).values({
    id: event.id,
    providerId: row.providerId,
    kind,
    namespace: row.namespace,
    payoutAccount: row.payoutAccount,
    previousPayoutAccount,
    active: row.active,
    pricingModel: row.pricingModel,
    pricePerCallMicro: row.pricePerCallMicro,
    poolWeight: row.poolWeight,
    tierUpToCalls: row.tierUpToCalls,
    tierPriceMicro: row.tierPriceMicro,
    blockNumber: row.blockNumber,
    logIndex: row.logIndex,
    timestamp: row.timestamp,
    txHash: row.txHash,
  });
}

ponder.on("ProviderRegistry:ProviderRegistered", async ({ event, context }) => {
  const meta = metaOf(event);
  const { providerId, namespace, payoutAccount, pricing } = event.args;
  // A provider id is registered once (ProviderAlreadyRegistered otherwise).
  const row = await context.db.insert(provider).values({
    providerId,
    namespace,
    payoutAccount,
    active: true,
    ...pricingColumns(pricing),
    registeredBlockNumber: meta.blockNumber,
    registeredTxHash: meta.txHash,
    ...eventColumns(meta),
  });
  await recordChange(context.db, row, event, "registered");
});

ponder.on("ProviderRegistry:ProviderPricingUpdated", async ({ event, context }) => {
  const row = await context.db
    .update(provider, { providerId: event.args.providerId })
    .set({ ...pricingColumns(event.args.pricing), ...eventColumns(metaOf(event)) });
  await recordChange(context.db, row, event, "pricing");
});

ponder.on("ProviderRegistry:ProviderPayoutAccountChanged", async ({ event, context }) => {
  const { providerId, oldPayoutAccount, newPayoutAccount } = event.args;
  const row = await context.db.update(provider, { providerId }).set({ payoutAccount: newPayoutAccount, ...eventColumns(metaOf(event)) });
  await recordChange(context.db, row, event, "payout_account", oldPayoutAccount);
});

ponder.on("ProviderRegistry:ProviderActiveChanged", async ({ event, context }) => {
  const row = await context.db
    .update(provider, { providerId: event.args.providerId })
    .set({ active: event.args.active, ...eventColumns(metaOf(event)) });
  await recordChange(context.db, row, event, "active");
});

ponder.on("ProviderRegistry:SettlementChanged", async ({ event, context }) => {
  const { feeBps, periodUnit, effectiveFrom } = event.args;
  await context.db
    .insert(settlementChange)
    .values({ id: event.id, feeBps, periodUnit: periodUnitOfCode(periodUnit), effectiveFrom, ...eventColumns(metaOf(event)) });
});
