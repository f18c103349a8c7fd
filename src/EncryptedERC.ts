import { ponder } from "ponder:registry";
import {
  account,
  auditorChange,
  deposit,
  privateBurn,
  privateMessage,
  privateMint,
  privateTransfer,
  token,
  withdrawal,
} from "ponder:schema";
import type { Address, Hex } from "viem";
import { EncryptedERCAbi } from "../abis/EncryptedERCAbi.js";
import { encryptPublicAmount } from "./eerc/elgamal.js";
import { decodeEercCall, type EercCall, egctToWords } from "./indexer/calldata.js";
import {
  accountPublicKey,
  applyBlockState,
  applyCredit,
  applyDeposit,
  applySpend,
  ensureToken,
  eventColumns,
  metaOf,
  toEercUnits,
  toTokenUnits,
} from "./indexer/ledger.js";

const lower = (a: Address) => a.toLowerCase() as Address;

/** The decoded call when the transaction called the eERC directly with `fn`; otherwise undefined. */
function directCall<F extends EercCall["fn"]>(
  event: { transaction: { to: Address | null; input: Hex } },
  eerc: Address,
  fn: F,
): Extract<EercCall, { fn: F }> | undefined {
  if (event.transaction.to === null || lower(event.transaction.to) !== lower(eerc)) return undefined;
  const call = decodeEercCall(event.transaction.input);
  return call?.fn === fn ? (call as Extract<EercCall, { fn: F }>) : undefined;
}

ponder.on("EncryptedERC:AuditorChanged", async ({ event, context }) => {
  const meta = metaOf(event);
  // The auditor must be registered; its Register event precedes this one unless it happened
  // before the start block, in which case the key is read from the eERC.
  const registered = await context.db.find(account, { address: event.args.newAuditor });
  const publicKey =
    registered?.publicKey ??
    (await context.client.readContract({
      abi: EncryptedERCAbi,
      address: context.contracts.EncryptedERC.address as Address,
      functionName: "auditorPublicKey",
    }));
  await context.db.insert(auditorChange).values({
    id: event.id,
    oldAuditor: event.args.oldAuditor,
    newAuditor: event.args.newAuditor,
    publicKey: [...publicKey],
    ...eventColumns(meta),
  });
});

ponder.on("EncryptedERC:Deposit", async ({ event, context }) => {
  const meta = metaOf(event);
  const { user, amount, dust, tokenId } = event.args;
  const t = await ensureToken(context, tokenId, meta);
  const credited = toEercUnits(amount - dust, t);
  const call = directCall(event, context.contracts.EncryptedERC.address as Address, "deposit");
  let amountPCT: bigint[] | undefined = call?.amountPCT;
  if (call) {
    const publicKey = await accountPublicKey(context, user, meta.blockNumber);
    await applyDeposit(context.db, { account: user, tokenId, value: credited, publicKey, pct: call.amountPCT, meta });
  } else if (credited > 0n) {
    amountPCT = (await applyBlockState(context, { account: user, tokenId, kind: "deposit", meta })).creditPCT;
  }
  await context.db.insert(deposit).values({
    id: event.id,
    account: user,
    tokenId,
    amount,
    dust,
    credited,
    amountPCT: amountPCT ?? null,
    source: call ? "calldata" : "block_state",
    ...eventColumns(meta),
  });
});

ponder.on("EncryptedERC:Withdraw", async ({ event, context }) => {
  const meta = metaOf(event);
  const { user, amount, tokenId, auditorPCT, auditorAddress } = event.args;
  const t = await ensureToken(context, tokenId, meta);
  const call = directCall(event, context.contracts.EncryptedERC.address as Address, "withdraw");
  const spent =
    call &&
    (await applySpend(context.db, {
      account: user,
      tokenId,
      kind: "withdraw",
      sub: encryptPublicAmount(amount, await accountPublicKey(context, user, meta.blockNumber)),
      snapshot: call.senderBalance,
      balancePCT: call.balancePCT,
      meta,
    }));
  const replayed = spent === "replayed" || spent === "included";
  const balancePCT = replayed
    ? call!.balancePCT
    : (await applyBlockState(context, { account: user, tokenId, kind: "withdraw", meta })).balancePCT;
  await context.db.insert(withdrawal).values({
    id: event.id,
    account: user,
    tokenId,
    amount,
    tokenAmount: toTokenUnits(amount, t),
    auditorAddress,
    auditorPCT: [...auditorPCT],
    balancePCT,
    source: replayed ? "calldata" : "block_state",
    ...eventColumns(meta),
  });
});

ponder.on("EncryptedERC:PrivateTransfer", async ({ event, context }) => {
  const meta = metaOf(event);
  const { from, to, auditorPCT, auditorAddress } = event.args;
  const call = directCall(event, context.contracts.EncryptedERC.address as Address, "transfer");
  const decoded = call && lower(call.to) === lower(to) ? call : undefined;
  const spent =
    decoded &&
    (await applySpend(context.db, {
      account: from,
      tokenId: decoded.tokenId,
      kind: "transfer_out",
      sub: decoded.senderVTT,
      snapshot: decoded.senderBalance,
      balancePCT: decoded.balancePCT,
      meta,
    }));
  if (decoded && (spent === "replayed" || spent === "included")) {
    await applyCredit(context.db, {
      account: to,
      tokenId: decoded.tokenId,
      kind: "transfer_in",
      add: decoded.receiverVTT,
      pct: decoded.receiverPCT,
      meta,
    });
    await context.db.insert(privateTransfer).values({
      id: event.id,
      from,
      to,
      tokenId: decoded.tokenId,
      auditorAddress,
      auditorPCT: [...auditorPCT],
      senderVTT: egctToWords(decoded.senderVTT),
      receiverVTT: egctToWords(decoded.receiverVTT),
      receiverPCT: decoded.receiverPCT,
      senderBalancePCT: decoded.balancePCT,
      source: "calldata",
      ...eventColumns(meta),
    });
    return;
  }
  const tokenId = decoded?.tokenId ?? (await spentToken(context, from, meta.blockNumber));
  const sender = await applyBlockState(context, { account: from, tokenId, kind: "transfer_out", meta });
  const receiver = await applyBlockState(context, { account: to, tokenId, kind: "transfer_in", meta });
  await context.db.insert(privateTransfer).values({
    id: event.id,
    from,
    to,
    tokenId,
    auditorAddress,
    auditorPCT: [...auditorPCT],
    senderVTT: decoded ? egctToWords(decoded.senderVTT) : null,
    receiverVTT: decoded ? egctToWords(decoded.receiverVTT) : null,
    receiverPCT: decoded?.receiverPCT ?? receiver.creditPCT ?? null,
    senderBalancePCT: sender.balancePCT,
    source: "block_state",
    ...eventColumns(meta),
  });
});

ponder.on("EncryptedERC:PrivateMint", async ({ event, context }) => {
  const meta = metaOf(event);
  const { user, auditorPCT, auditorAddress } = event.args;
  const call = directCall(event, context.contracts.EncryptedERC.address as Address, "privateMint");
  const decoded = call && lower(call.user) === lower(user) ? call : undefined;
  let receiverPCT = decoded?.receiverPCT;
  // A false from applyCredit means this block's chain read already holds the mint.
  if (decoded)
    await applyCredit(context.db, { account: user, tokenId: 0n, kind: "mint", add: decoded.receiverVTT, pct: decoded.receiverPCT, meta });
  else receiverPCT = (await applyBlockState(context, { account: user, tokenId: 0n, kind: "mint", meta })).creditPCT;
  await context.db.insert(privateMint).values({
    id: event.id,
    account: user,
    tokenId: 0n,
    nullifierHash: decoded?.nullifierHash ?? null,
    receiverVTT: decoded ? egctToWords(decoded.receiverVTT) : null,
    receiverPCT: receiverPCT ?? null,
    auditorAddress,
    auditorPCT: [...auditorPCT],
    source: decoded ? "calldata" : "block_state",
    ...eventColumns(meta),
  });
});

ponder.on("EncryptedERC:PrivateBurn", async ({ event, context }) => {
  const meta = metaOf(event);
  const { user, auditorPCT, auditorAddress } = event.args;
  const call = directCall(event, context.contracts.EncryptedERC.address as Address, "privateBurn");
  const spent =
    call &&
    (await applySpend(context.db, {
      account: user,
      tokenId: 0n,
      kind: "burn",
      sub: call.burnVTT,
      snapshot: call.senderBalance,
      balancePCT: call.balancePCT,
      meta,
    }));
  const replayed = spent === "replayed" || spent === "included";
  const balancePCT = replayed
    ? call!.balancePCT
    : (await applyBlockState(context, { account: user, tokenId: 0n, kind: "burn", meta })).balancePCT;
  await context.db.insert(privateBurn).values({
    id: event.id,
    account: user,
    tokenId: 0n,
    burnVTT: replayed ? egctToWords(call!.burnVTT) : null,
    balancePCT,
    auditorAddress,
    auditorPCT: [...auditorPCT],
    source: replayed ? "calldata" : "block_state",
    ...eventColumns(meta),
  });
});

ponder.on("EncryptedERC:PrivateMessage", async ({ event, context }) => {
  const meta = metaOf(event);
  const { from, to, metadata } = event.args;
  await context.db.insert(privateMessage).values({
    id: event.id,
    from,
    to,
    messageFrom: metadata.messageFrom,
    messageTo: metadata.messageTo,
    messageType: metadata.messageType,
    encryptedMsg: metadata.encryptedMsg,
    ...eventColumns(meta),
  });
});

/**
 * The token a transfer spent when its calldata is not at hand: the one whose sender nonce moved
 * in this block (standalone mode has only token 0).
 */
async function spentToken(context: Parameters<typeof applyBlockState>[0], from: Address, blockNumber: bigint): Promise<bigint> {
  const tokens = await context.db.sql.select({ tokenId: token.tokenId }).from(token);
  if (tokens.length === 0) return 0n;
  const eerc = context.contracts.EncryptedERC.address as Address;
  for (const { tokenId } of tokens) {
    const [before, after] = await Promise.all(
      [blockNumber - 1n, blockNumber].map((b) =>
        context.client.readContract({
          abi: EncryptedERCAbi,
          address: eerc,
          // The scalar getter: O(1), where balanceOf grows with the pending queue.
          functionName: "balances",
          args: [from, tokenId],
          blockNumber: b,
        }),
      ),
    );
    if (after![1] > before![1]) return tokenId;
  }
  throw new Error(`PrivateTransfer from ${from} in block ${blockNumber}: no token's nonce moved`);
}
