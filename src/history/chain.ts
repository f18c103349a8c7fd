import { type Address, decodeFunctionData, getAbiItem, getAddress, type Hex, isAddressEqual, type PublicClient, zeroAddress } from "viem";
import { EncryptedERCAbi } from "../../abis/EncryptedERCAbi.js";
import { RegistrarAbi } from "../../abis/RegistrarAbi.js";
import { connectChain } from "../chain/clients.js";
import { byChainPosition } from "../chain/position.js";
import { decryptBalance } from "../eerc/balance.js";
import { readBalance } from "../eerc/balance-read.js";
import type { Point } from "../eerc/curve.js";
import type { EGCT } from "../eerc/elgamal.js";
import { networkFailureReason } from "../http/errors.js";
import { type PeriodUnit, periodLabel } from "../usage/period.js";
import { mapLimit } from "../util/concurrency.js";
import { getOrCreate } from "../util/map.js";
import { assertKeyMatches, auditTotals } from "./decrypt.js";
import { ChainMismatchError, RpcUnreachableError, UnknownAccountError } from "./errors.js";
import type {
  AuditEntry,
  AuditKind,
  AuditPeriod,
  AuditReport,
  AuditTotalsResponse,
  ReceivedTransferRecord,
  UnresolvedTransfer,
} from "./types.js";

/**
 * RPC-only mode: everything a provider or auditor needs, read straight from the eERC
 * contracts, so it works while every BackendShield process is down.
 */

/** Either an RPC URL (probed, with clear errors) or an already-connected client. */
export type RpcSource = { rpcUrl: string; publicClient?: PublicClient };

// Transfer public signals (eerc-interface.md, declaration order): ReceiverPCT[4] at 16..19,
// ReceiverPCTAuthKey[2] at 20..21, ReceiverPCTNonce at 22.
const RECEIVER_PCT_SIGNALS = [16, 23] as const;

export const DEFAULT_BLOCK_RANGE = 2_000n;
const CONCURRENCY = 8;

/**
 * Asks the endpoint for its chain id (one request, bounded by `timeoutMs`) before connecting,
 * so a dead or wrong endpoint is a RpcUnreachableError rather than a retried viem failure.
 */
export async function openRpc(rpcUrl: string, options: { expectedChainId?: number; timeoutMs?: number } = {}): Promise<PublicClient> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  let chainId: number;
  try {
    const res = await fetch(rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let body: { result?: unknown };
    try {
      body = JSON.parse(text);
    } catch {
      throw new RpcUnreachableError(rpcUrl, `HTTP ${res.status}, not a JSON-RPC answer`);
    }
    if (typeof body.result !== "string") throw new RpcUnreachableError(rpcUrl, `HTTP ${res.status}, eth_chainId gave no result`);
    chainId = Number(BigInt(body.result));
  } catch (e) {
    if (e instanceof RpcUnreachableError) throw e;
    throw new RpcUnreachableError(rpcUrl, networkFailureReason(e, timeoutMs), { cause: e });
  }
  if (options.expectedChainId !== undefined && options.expectedChainId !== chainId) {
    throw new ChainMismatchError(options.expectedChainId, chainId);
  }
  return (await connectChain(rpcUrl)).publicClient;
}

const clientOf = async (source: RpcSource) => source.publicClient ?? (await openRpc(source.rpcUrl));

/** The account's registered eERC public key; UnknownAccountError when it is not registered. */
export async function registeredKey(publicClient: PublicClient, registrar: Address, account: Address): Promise<Point> {
  const registered = await publicClient.readContract({
    address: registrar,
    abi: RegistrarAbi,
    functionName: "isUserRegistered",
    args: [account],
  });
  if (!registered) throw new UnknownAccountError(account, `in the Registrar at ${registrar}`);
  const [x, y] = await publicClient.readContract({
    address: registrar,
    abi: RegistrarAbi,
    functionName: "getUserPublicKey",
    args: [account],
  });
  return [x, y];
}

/** UnknownAccountError if unregistered, KeyMismatchError if `sk` is not the registered key. */
export async function verifyAccountKey(publicClient: PublicClient, registrar: Address, account: Address, sk: bigint): Promise<Point> {
  const key = await registeredKey(publicClient, registrar, account);
  assertKeyMatches(account, key, sk);
  return key;
}

export type ChainToken = { tokenId: bigint; tokenAddress: Address | null };

/** Converter mode: the wrapped tokens, ids from 1 in order of first deposit. Standalone: token 0. */
export async function tokensFromChain(publicClient: PublicClient, encryptedERC: Address): Promise<ChainToken[]> {
  const isConverter = await publicClient.readContract({ address: encryptedERC, abi: EncryptedERCAbi, functionName: "isConverter" });
  if (!isConverter) return [{ tokenId: 0n, tokenAddress: null }];
  const tokens: ChainToken[] = [];
  for (let id = 1n; ; id++) {
    const token = await publicClient.readContract({
      address: encryptedERC,
      abi: EncryptedERCAbi,
      functionName: "tokenAddresses",
      args: [id],
    });
    if (isAddressEqual(token, zeroAddress)) return tokens;
    tokens.push({ tokenId: id, tokenAddress: getAddress(token) });
  }
}

export type ChainBalance = {
  account: Address;
  tokenId: bigint;
  balanceMicro: bigint;
  nonce: bigint;
  transactionIndex: bigint;
  /** credits received since the account's last spend */
  pendingCredits: number;
  /** The encrypted balance that decrypted to `balanceMicro`: what a spend is proved against. */
  eGCT: EGCT;
};

/**
 * The account's current balance of one token, read with the SDK's bounded read and decrypted with the
 * SDK (PCTs checked against the EGCT), after checking that `sk` is the registered key.
 */
export async function balanceFromChain(
  args: RpcSource & { encryptedERC: Address; registrar: Address; account: Address; tokenId: bigint; sk: bigint },
): Promise<ChainBalance> {
  const publicClient = await clientOf(args);
  const account = getAddress(args.account);
  await verifyAccountKey(publicClient, args.registrar, account, args.sk);
  const view = await readBalance(publicClient, { encryptedERC: args.encryptedERC, user: account, tokenId: args.tokenId });
  return {
    account,
    tokenId: args.tokenId,
    balanceMicro: decryptBalance(view, args.sk),
    nonce: view.nonce,
    transactionIndex: view.transactionIndex,
    pendingCredits: view.amountPCTs.length,
    eGCT: view.eGCT,
  };
}

/** `fetchRange` over [fromBlock, toBlock] in ranges of `step` blocks (RPCs cap getLogs ranges). */
export async function getLogsChunked<T>(
  fromBlock: bigint,
  toBlock: bigint,
  step: bigint,
  fetchRange: (from: bigint, to: bigint) => Promise<T[]>,
): Promise<T[]> {
  const out: T[] = [];
  for (let from = fromBlock; from <= toBlock; from += step) {
    const to = from + step - 1n < toBlock ? from + step - 1n : toBlock;
    out.push(...(await fetchRange(from, to)));
  }
  return out;
}

type TransferCall = { to: Address; tokenId: bigint; receiverPCT: bigint[] };

/** The transfer's calldata, when the transaction called the eERC contract's `transfer` directly. */
async function transferCall(publicClient: PublicClient, encryptedERC: Address, hash: Hex): Promise<TransferCall | null> {
  const tx = await publicClient.getTransaction({ hash });
  if (!tx.to || !isAddressEqual(tx.to, encryptedERC)) return null;
  try {
    const call = decodeFunctionData({ abi: EncryptedERCAbi, data: tx.input });
    if (call.functionName !== "transfer") return null;
    const [to, tokenId, proof] = call.args as unknown as [Address, bigint, { publicSignals: readonly bigint[] }];
    return { to: getAddress(to), tokenId, receiverPCT: proof.publicSignals.slice(...RECEIVER_PCT_SIGNALS) };
  } catch {
    return null;
  }
}

const privateTransferEvent = getAbiItem({ abi: EncryptedERCAbi, name: "PrivateTransfer" });
const withdrawEvent = getAbiItem({ abi: EncryptedERCAbi, name: "Withdraw" });
const privateMintEvent = getAbiItem({ abi: EncryptedERCAbi, name: "PrivateMint" });
const privateBurnEvent = getAbiItem({ abi: EncryptedERCAbi, name: "PrivateBurn" });

/**
 * Private transfers to `account` from the chain, with the receiver PCT taken from each
 * transaction's calldata (the event carries neither the token nor the receiver's data).
 * Transfers made through another contract cannot be read that way and are returned as
 * `unresolved`.
 */
export async function receivedFromChain(
  args: RpcSource & { encryptedERC: Address; account: Address; fromBlock: bigint; toBlock?: bigint; tokenId?: bigint; blockRange?: bigint },
): Promise<{ records: ReceivedTransferRecord[]; unresolved: UnresolvedTransfer[] }> {
  const publicClient = await clientOf(args);
  const account = getAddress(args.account);
  const toBlock = args.toBlock ?? (await publicClient.getBlockNumber());
  const logs = await getLogsChunked(args.fromBlock, toBlock, args.blockRange ?? DEFAULT_BLOCK_RANGE, (from, to) =>
    publicClient.getLogs({
      address: args.encryptedERC,
      event: privateTransferEvent,
      args: { to: account },
      fromBlock: from,
      toBlock: to,
      strict: true,
    }),
  );
  const calls = await mapLimit(logs, CONCURRENCY, (log) => transferCall(publicClient, args.encryptedERC, log.transactionHash));
  const records: ReceivedTransferRecord[] = [];
  const unresolved: UnresolvedTransfer[] = [];
  logs.forEach((log, i) => {
    const call = calls[i];
    const from = getAddress(log.args.from);
    if (!call || !isAddressEqual(call.to, account)) {
      unresolved.push({ from, tokenId: null, blockNumber: log.blockNumber, txHash: log.transactionHash });
      return;
    }
    if (args.tokenId !== undefined && call.tokenId !== args.tokenId) return;
    records.push({ from, tokenId: call.tokenId, blockNumber: log.blockNumber, txHash: log.transactionHash, amountPCT: call.receiverPCT });
  });
  return { records, unresolved };
}

/**
 * Every auditor PCT the eERC contract emitted since `fromBlock`, grouped by UTC period and
 * token: the same structure as the REST API's `/audit/totals`. A transfer's token comes from
 * its calldata; when that cannot be read, it is the deployment's only token if it has one,
 * else null.
 */
export async function auditResponseFromChain(
  args: RpcSource & { encryptedERC: Address; fromBlock: bigint; toBlock?: bigint; period: PeriodUnit; blockRange?: bigint },
): Promise<AuditTotalsResponse> {
  const publicClient = await clientOf(args);
  const address = args.encryptedERC;
  const [auditor, keySet, tokens] = await Promise.all([
    publicClient.readContract({ address, abi: EncryptedERCAbi, functionName: "auditor" }),
    publicClient.readContract({ address, abi: EncryptedERCAbi, functionName: "isAuditorKeySet" }),
    tokensFromChain(publicClient, address),
  ]);
  const auditorPublicKey: Point | null = keySet
    ? await publicClient.readContract({ address, abi: EncryptedERCAbi, functionName: "auditorPublicKey" }).then(([x, y]) => [x, y])
    : null;

  const toBlock = args.toBlock ?? (await publicClient.getBlockNumber());
  const logs = await getLogsChunked(args.fromBlock, toBlock, args.blockRange ?? DEFAULT_BLOCK_RANGE, (from, to) =>
    publicClient.getLogs({
      address,
      events: [privateTransferEvent, withdrawEvent, privateMintEvent, privateBurnEvent],
      fromBlock: from,
      toBlock: to,
      strict: true,
    }),
  );
  logs.sort(byChainPosition);

  const blocks = [...new Set(logs.map((l) => l.blockNumber))];
  const timestamps = new Map(
    await mapLimit(blocks, CONCURRENCY, async (n) => [n, (await publicClient.getBlock({ blockNumber: n })).timestamp] as const),
  );
  const onlyToken = tokens.length === 1 ? tokens[0]!.tokenId : null;
  const transferHashes = [...new Set(logs.filter((l) => l.eventName === "PrivateTransfer").map((l) => l.transactionHash))];
  const transferTokens = new Map(
    await mapLimit(
      transferHashes,
      CONCURRENCY,
      async (h) => [h, (await transferCall(publicClient, address, h))?.tokenId ?? onlyToken] as const,
    ),
  );

  const periods = new Map<string, AuditPeriod>();
  for (const log of logs) {
    let kind: AuditKind;
    let tokenId: bigint | null;
    switch (log.eventName) {
      case "PrivateTransfer":
        kind = "transfer";
        tokenId = transferTokens.get(log.transactionHash) ?? null;
        break;
      case "Withdraw":
        kind = "withdraw";
        tokenId = log.args.tokenId;
        break;
      case "PrivateMint":
        kind = "mint";
        tokenId = 0n;
        break;
      case "PrivateBurn":
        kind = "burn";
        tokenId = 0n;
        break;
    }
    const period = periodLabel(timestamps.get(log.blockNumber)!, args.period);
    const key = `${period}\u0000${tokenId ?? ""}`;
    const p = getOrCreate(periods, key, () => ({ period, tokenId, entries: [] as AuditEntry[] }));
    const entry: AuditEntry = {
      kind,
      txHash: log.transactionHash,
      auditorAddress: getAddress(log.args.auditorAddress),
      auditorPCT: [...log.args.auditorPCT],
    };
    p.entries.push(entry);
  }
  return {
    auditor: isAddressEqual(auditor, zeroAddress) ? null : getAddress(auditor),
    auditorPublicKey,
    periods: [...periods.values()],
    // Payout cycle totals come from the operator's read of the payout ledger: the API has them, a bare RPC does not.
    cycles: null,
  };
}

/** auditTotals over the chain's own events: the auditor's check that needs only an RPC. */
export async function auditFromChain(
  args: RpcSource & {
    encryptedERC: Address;
    fromBlock: bigint;
    toBlock?: bigint;
    period: PeriodUnit;
    sk: bigint;
    blockRange?: bigint;
  },
): Promise<AuditReport> {
  return auditTotals(await auditResponseFromChain(args), args.sk);
}
