import {
  type Address,
  encodeAbiParameters,
  getAddress,
  type Hex,
  hexToBigInt,
  keccak256,
  type PublicClient,
  toFunctionSelector,
  toHex,
} from "viem";
import { EncryptedERCAbi } from "../../abis/EncryptedERCAbi.js";
import { BaseError } from "../errors.js";
import { mapLimit } from "../util/concurrency.js";
import type { BalanceView } from "./balance.js";
import type { EGCTStruct } from "./format.js";

/**
 * The one place an eERC balance is read from the chain (SDK, payout pipeline, RPC-only history,
 * CLI, the indexer's block-state fallback), with a cost bounded by the size of one read whatever
 * the length of the pending queue.
 *
 * `balanceOf` returns every pending amount PCT (about 19k gas each in an eth_call), so one call
 * stops fitting the node's eth_call gas cap at a few thousand pending credits: anyone can push an
 * account there with dust transfers. The read therefore first learns how many PCTs are pending
 * (one O(1) read), takes `balanceOf` whole when that is at most FAST_PATH_PCTS, and otherwise
 * reads the balance in bounded pieces, all at one block so the pieces belong together:
 * - on this project's EncryptedERC, through `balanceHeader` and `pendingPCTs` (additions to the
 *   audited interface, found by their selectors in the contract's code);
 * - on the audited contracts (May 2025 and July 2025 main, which have neither), from storage
 *   slots with eth_getStorageAt, which no gas cap applies to. The slots follow the audited storage
 *   layout (AUDITED_LAYOUT); before they are trusted, the balance's scalar words read that way
 *   must equal what the contract's own `balances(user, tokenId)` getter returns.
 */

/** At most this many pending PCTs are read with one `balanceOf` (about 7.7M gas at 19.2k per PCT). */
export const FAST_PATH_PCTS = 400n;
/** Pending PCTs per `pendingPCTs` call on the paged path (about the same gas as the fast path). */
export const PAGE_PCTS = 400n;
/** Parallel requests of one read. */
const CONCURRENCY = 8;
const STORAGE_CONCURRENCY = 32;

/**
 * Storage layout of the audited EncryptedERC (solc storageLayout of its `EncryptedERC`, the same
 * in the May and July 2025 versions: Ownable2Step's two slots and TokenTracker's six come first):
 * `balances` is the mapping at slot 8, user => tokenId => EncryptedBalance, whose members sit at
 * eGCT 0..3, balanceList 4 (a mapping), nonce 5, transactionIndex 6, balancePCT 7..13 and
 * amountPCTs 14 (a dynamic array of 8-slot AmountPCT {pct[7], index}).
 */
export const AUDITED_LAYOUT = {
  balancesSlot: 8n,
  eGCT: 0n,
  nonce: 5n,
  transactionIndex: 6n,
  balancePCT: 7n,
  amountPCTs: 14n,
  amountPCTSlots: 8n,
} as const;

/** One (account, token) balance as `balanceOf` returns it. */
export type OnChainBalance = BalanceView & { nonce: bigint; transactionIndex: bigint };

/** `balanceOf` / `getBalanceFromTokenAddress` as viem decodes it. */
export type RawBalance = readonly [EGCTStruct, bigint, readonly { pct: readonly bigint[]; index: bigint }[], readonly bigint[], bigint];

export function toBalanceView(raw: RawBalance): OnChainBalance {
  const [eGCT, nonce, amountPCTs, balancePCT, transactionIndex] = raw;
  return {
    eGCT: { c1: [eGCT.c1.x, eGCT.c1.y], c2: [eGCT.c2.x, eGCT.c2.y] },
    nonce,
    amountPCTs: amountPCTs.map((a) => ({ pct: [...a.pct], index: a.index })),
    balancePCT: [...balancePCT],
    transactionIndex,
  };
}

/**
 * What a balance read needs of a client: a viem PublicClient, or the indexer's block-pinned
 * client (which has no getBlockNumber; its reads always name a block).
 */
export type BalanceRpc = {
  readContract: PublicClient["readContract"];
  getStorageAt: PublicClient["getStorageAt"];
  getCode: PublicClient["getCode"];
  getBlockNumber?: PublicClient["getBlockNumber"];
};

export type BalanceReadArgs = {
  encryptedERC: Address;
  user: Address;
  tokenId: bigint;
  /** Read the balance as of the end of this block (default: the latest). */
  blockNumber?: bigint;
  /** Take `balanceOf` whole up to this many pending PCTs (default FAST_PATH_PCTS; tests lower it). */
  fastPathPCTs?: bigint;
  /** PCTs per `pendingPCTs` call (default PAGE_PCTS). */
  pagePCTs?: bigint;
};

export class BalanceReadError extends BaseError {
  readonly code = "BALANCE_READ_FAILED";
}

const selector = (name: "balanceHeader" | "pendingPCTs") =>
  toFunctionSelector(EncryptedERCAbi.find((x) => x.type === "function" && x.name === name)! as never);
const PAGED_SELECTORS = [selector("balanceHeader"), selector("pendingPCTs")];

/** True when the code's dispatcher has every one of `selectors` (PUSH4 <selector>). */
export const codeHasSelectors = (code: Hex, selectors: readonly Hex[]) => selectors.every((s) => code.includes(`63${s.slice(2)}`));

const pagedCache = new WeakMap<object, Map<string, Promise<boolean>>>();

/** Whether the eERC at `address` has the paged getters; asked once per client and address. */
export function hasPagedReads(rpc: BalanceRpc, address: Address): Promise<boolean> {
  const byAddress = pagedCache.get(rpc) ?? new Map<string, Promise<boolean>>();
  pagedCache.set(rpc, byAddress);
  const key = address.toLowerCase();
  let probe = byAddress.get(key);
  if (!probe) {
    probe = rpc.getCode({ address }).then((code) => !!code && codeHasSelectors(code, PAGED_SELECTORS));
    // A failed probe is asked again next time.
    probe.catch(() => byAddress.delete(key));
    byAddress.set(key, probe);
  }
  return probe;
}

/** Where the block a multi-part read is pinned to comes from. */
async function pinBlock(rpc: BalanceRpc, blockNumber: bigint | undefined): Promise<bigint> {
  if (blockNumber !== undefined) return blockNumber;
  if (!rpc.getBlockNumber) throw new BalanceReadError("a balance read in pieces needs a block number");
  // Never a cached number: a read right after a receipt must see that receipt's block.
  return rpc.getBlockNumber({ cacheTime: 0 });
}

async function readWhole(rpc: BalanceRpc, args: BalanceReadArgs): Promise<OnChainBalance> {
  const raw = await rpc.readContract({
    address: args.encryptedERC,
    abi: EncryptedERCAbi,
    functionName: "balanceOf",
    args: [args.user, args.tokenId],
    blockNumber: args.blockNumber,
  });
  return toBalanceView(raw);
}

/** This project's EncryptedERC: the header, then the pending PCTs page by page. */
async function readPaged(rpc: BalanceRpc, args: BalanceReadArgs): Promise<OnChainBalance> {
  const base = { address: args.encryptedERC, abi: EncryptedERCAbi } as const;
  const probe = await rpc.readContract({
    ...base,
    functionName: "balanceHeader",
    args: [args.user, args.tokenId],
    blockNumber: args.blockNumber,
  });
  if (probe[4] <= (args.fastPathPCTs ?? FAST_PATH_PCTS)) return readWhole(rpc, args);

  const blockNumber = await pinBlock(rpc, args.blockNumber);
  const [eGCT, nonce, balancePCT, transactionIndex, count] =
    args.blockNumber === undefined
      ? await rpc.readContract({ ...base, functionName: "balanceHeader", args: [args.user, args.tokenId], blockNumber })
      : probe;
  const page = args.pagePCTs ?? PAGE_PCTS;
  const offsets: bigint[] = [];
  for (let o = 0n; o < count; o += page) offsets.push(o);
  const pages = await mapLimit(offsets, CONCURRENCY, (offset) =>
    rpc.readContract({ ...base, functionName: "pendingPCTs", args: [args.user, args.tokenId, offset, page], blockNumber }),
  );
  const amountPCTs = pages.flat();
  if (BigInt(amountPCTs.length) !== count) {
    throw new BalanceReadError(`pendingPCTs returned ${amountPCTs.length} PCTs, balanceHeader counted ${count}`);
  }
  return toBalanceView([eGCT, nonce, amountPCTs, balancePCT, transactionIndex]);
}

const word = (n: bigint): Hex => toHex(n, { size: 32 });

/** The storage slot of the audited `balances[user][tokenId]`. */
export function auditedBalanceSlot(user: Address, tokenId: bigint): bigint {
  const inner = keccak256(encodeAbiParameters([{ type: "address" }, { type: "uint256" }], [getAddress(user), AUDITED_LAYOUT.balancesSlot]));
  return hexToBigInt(keccak256(encodeAbiParameters([{ type: "uint256" }, { type: "bytes32" }], [tokenId, inner])));
}

/** The audited contracts: the queue length from storage, then (for a long queue) the whole balance from storage. */
async function readAuditedStorage(rpc: BalanceRpc, args: BalanceReadArgs): Promise<OnChainBalance> {
  const slot = auditedBalanceSlot(args.user, args.tokenId);
  const L = AUDITED_LAYOUT;
  const at = (n: bigint, blockNumber?: bigint) =>
    rpc.getStorageAt({ address: args.encryptedERC, slot: word(n), blockNumber }).then((v) => (v ? hexToBigInt(v) : 0n));
  // A wrong layout reads an unrelated slot (zero, as a rule): the whole read then decides.
  if ((await at(slot + L.amountPCTs, args.blockNumber)) <= (args.fastPathPCTs ?? FAST_PATH_PCTS)) return readWhole(rpc, args);

  const blockNumber = await pinBlock(rpc, args.blockNumber);
  const read = (slots: bigint[]) => mapLimit(slots, STORAGE_CONCURRENCY, (s) => at(s, blockNumber));
  const range = (from: bigint, n: bigint) => Array.from({ length: Number(n) }, (_, i) => from + BigInt(i));
  const [getter, scalars, count] = await Promise.all([
    rpc.readContract({
      address: args.encryptedERC,
      abi: EncryptedERCAbi,
      functionName: "balances",
      args: [args.user, args.tokenId],
      blockNumber,
    }),
    read([...range(slot + L.eGCT, 4n), slot + L.nonce, slot + L.transactionIndex, ...range(slot + L.balancePCT, 7n)]),
    at(slot + L.amountPCTs, blockNumber),
  ]);
  const [g, gNonce, gIndex] = getter;
  const expected = [g.c1.x, g.c1.y, g.c2.x, g.c2.y, gNonce, gIndex];
  if (expected.some((v, i) => scalars[i] !== v)) {
    throw new BalanceReadError(
      `the eERC at ${args.encryptedERC} does not keep balances in the audited storage layout, and ${count} pending PCTs are too many for one balanceOf`,
    );
  }
  const data = hexToBigInt(keccak256(word(slot + L.amountPCTs)));
  const words = await read(range(data, count * L.amountPCTSlots));
  const amountPCTs = Array.from({ length: Number(count) }, (_, i) => {
    const w = words.slice(i * 8, i * 8 + 8);
    return { pct: w.slice(0, 7), index: w[7]! };
  });
  return {
    eGCT: { c1: [g.c1.x, g.c1.y], c2: [g.c2.x, g.c2.y] },
    nonce: gNonce,
    transactionIndex: gIndex,
    balancePCT: scalars.slice(6, 13),
    amountPCTs,
  };
}

/**
 * How many times `user` has spent its `tokenId` balance (transfers out, withdrawals, burns): the
 * balance's nonce, which every spend increments and nothing else moves, on this project's
 * EncryptedERC and the audited ones. One read of the `balances` getter, whatever the queue's length.
 */
export async function readSpendCount(
  rpc: Pick<BalanceRpc, "readContract">,
  args: Pick<BalanceReadArgs, "encryptedERC" | "user" | "tokenId" | "blockNumber">,
): Promise<bigint> {
  const [, nonce] = await rpc.readContract({
    address: args.encryptedERC,
    abi: EncryptedERCAbi,
    functionName: "balances",
    args: [args.user, args.tokenId],
    blockNumber: args.blockNumber,
  });
  return nonce;
}

/** The balance `balanceOf` would return, read with a bounded cost per request (see the top of this file). */
export async function readBalance(rpc: BalanceRpc, args: BalanceReadArgs): Promise<OnChainBalance> {
  return (await hasPagedReads(rpc, args.encryptedERC)) ? readPaged(rpc, args) : readAuditedStorage(rpc, args);
}
