import {
  type Account,
  type Address,
  type Chain,
  ContractFunctionRevertedError,
  createWalletClient,
  custom,
  getAddress,
  type Hex,
  isAddressEqual,
  type PublicClient,
  type Transport,
  BaseError as ViemBaseError,
  type WalletClient,
  zeroHash,
} from "viem";
import { UsageLedgerAbi } from "../../abis/UsageLedgerAbi.js";
import type { Point } from "../eerc/curve.js";
import { BaseError, summarize } from "../errors.js";
import { failureOf, type HttpAnswer, sendRequest } from "../http/client.js";
import { type LogTarget, toLogger } from "../log.js";
import { type BuiltBatch, batchHash, batchTypedData, buildBatch, recordsTree, type UsageBatch } from "../usage/batch.js";
import { fetchLineKeys } from "../usage/keys.js";
import type { CallRecord } from "../usage/record.js";
import { providerIdOf } from "../usage/registry.js";
import type { ClosedBatch } from "./meter.js";

/** How batches reach the UsageLedger: the server's own transaction, or its signature relayed by the API. */
export type SubmitMode = { kind: "direct" } | { kind: "relay"; apiUrl: string };

/** A signing account: viem's local accounts (`privateKeyToAccount`) qualify. */
export type ServerAccount = Account & { signTypedData: NonNullable<Account["signTypedData"]> };

export type BatchSubmitterOptions = {
  /** The server's key: sends `commit` (direct) or signs `CommitUsageBatch` (relay). */
  serverAccount: ServerAccount;
  publicClient: PublicClient;
  /** Direct mode: the wallet that sends `commit` (default: one over `publicClient`'s transport). */
  walletClient?: WalletClient<Transport, Chain, Account>;
  ledger: Address;
  registry: Address;
  registrar: Address;
  /** The eERC contract, whose auditor key every line is encrypted to. */
  eerc: Address;
  /** The operator's eERC public key; default: the key the Registrar holds for the UsageLedger's `operator()`. */
  operatorPk?: Point;
  mode: SubmitMode;
  /** Relay mode: how long the signature stays valid (default 3,600 s). */
  deadlineSeconds?: number;
  /** Relay mode: also send the call records, so the API can check the Merkle root (default false). */
  sendRecords?: boolean;
  /** Relay mode: per request (default 60 s). */
  timeoutMs?: number;
  /** How long to wait for a commit transaction to be mined (default 600 s). */
  receiptTimeoutMs?: number;
  /**
   * First block searched for a committed batch's `UsageCommitted` log, to compare it with the batch
   * handed over under the same id (default 0; the ledger's deployment block saves the node work).
   */
  fromBlock?: bigint;
  fetch?: typeof globalThis.fetch;
  /** Padded line count floor (a power of two; default 4). */
  minLines?: number;
  /**
   * Where each submission is logged, with its batch id, record count, transaction and time (never
   * a price or an amount): a pino logger (`createLogger("meter")`) or a line callback; default none.
   */
  log?: LogTarget;
};

/** What one submission did. `txHash` is null when the batch was already committed before this attempt. */
export type SubmitResult = { batchId: Hex; txHash: Hex | null; alreadyCommitted: boolean };

export type BatchSubmitter = {
  /** The server whose batches this submitter commits. */
  readonly server: Address;
  /** For `createMeter({ submitter })`: resolves once the batch is on chain; the meter then writes its `submitted` line. */
  onBatch(closed: ClosedBatch): Promise<{ txHash: Hex | null }>;
  /** The batch hash the UsageLedger holds under `batchId` for this server, or null when the id is free. */
  committedBatchHash(batchId: Hex): Promise<Hex | null>;
  submit(closed: ClosedBatch): Promise<SubmitResult>;
  /** Builds the batch: Merkle root, lines encrypted to keys read from chain now. */
  build(closed: ClosedBatch): Promise<BuiltBatch>;
};

export class BatchSubmitError extends BaseError {
  readonly code = "BATCH_SUBMIT_FAILED";
  constructor(
    message: string,
    readonly batchId: Hex,
    options?: { cause?: unknown; status?: number },
  ) {
    // `status`: the API's HTTP status, when the API answered.
    super(message, options);
  }
}

/**
 * The UsageLedger holds other content under a batch's id than the batch handed over: its records
 * never reach the chain under that id. Submission stops (the meter keeps the batch pending and
 * halts delivery) until an operator acts: see "Recovering a lost spool" in docs/operations.md.
 */
export class BatchIdConflictError extends BaseError {
  readonly code = "BATCH_ID_CONFLICT";
  constructor(
    readonly server: Address,
    readonly sequence: number,
    readonly batchId: Hex,
    readonly committed: { merkleRoot: Hex; periodStart: bigint; periodEnd: bigint } | null,
    readonly local: { merkleRoot: Hex; periodStart: bigint; periodEnd: bigint },
  ) {
    super(
      `batch ${sequence} (${batchId}) of server ${server} is already committed on chain with other content ` +
        `(${committed ? `Merkle root ${committed.merkleRoot}, period ${committed.periodStart}–${committed.periodEnd}` : "no log matches the stored hash"}; ` +
        `this batch: Merkle root ${local.merkleRoot}, period ${local.periodStart}–${local.periodEnd}): ` +
        "the spool was probably lost or replaced and its numbering restarted. Nothing was marked submitted; " +
        "restart the meter with the spool restored, or with a new server key or a startSequence after the last committed batch",
    );
  }
}

/** True when `err` is (or wraps) UsageLedger's `BatchAlreadyCommitted` revert. */
export function isBatchAlreadyCommitted(err: unknown): boolean {
  if (!(err instanceof ViemBaseError)) return false;
  const revert = err.walk((e) => e instanceof ContractFunctionRevertedError);
  return revert instanceof ContractFunctionRevertedError && revert.data?.errorName === "BatchAlreadyCommitted";
}

/** The JSON body of `POST /usage/submit`: integers as decimal strings, byte strings as hex. */
export function submitRequestBody(batch: UsageBatch, deadline: bigint, signature: Hex, records?: readonly CallRecord[]) {
  return {
    batch: {
      server: batch.server,
      batchId: batch.batchId,
      periodStart: batch.periodStart.toString(),
      periodEnd: batch.periodEnd.toString(),
      merkleRoot: batch.merkleRoot,
      encryptedLines: batch.encryptedLines,
    },
    deadline: deadline.toString(),
    signature,
    // A call's x402 payment is not part of its leaf: the API gets the committed fields only.
    ...(records ? { records: records.map(({ payment: _, ...r }) => ({ ...r, priceMicro: r.priceMicro.toString() })) } : {}),
  };
}

const isHash = (v: unknown): v is Hex => typeof v === "string" && /^0x[0-9a-fA-F]{64}$/.test(v);

/**
 * The API's answer to `POST /usage/submit`: `{ batchId, txHash }` once the relayer's transaction
 * is sent (the same answer again for the same batch; `txHash` null for a batch committed by a
 * transaction it cannot find); anything else is a BatchSubmitError with the HTTP status.
 */
export async function postSubmit(
  apiUrl: string,
  body: ReturnType<typeof submitRequestBody>,
  options: { fetch?: typeof globalThis.fetch; timeoutMs?: number } = {},
): Promise<{ batchId: Hex; txHash: Hex | null }> {
  const url = new URL("usage/submit", apiUrl.endsWith("/") ? apiUrl : `${apiUrl}/`).href;
  const batchId = body.batch.batchId;
  let answer: HttpAnswer;
  try {
    answer = await sendRequest(url, { method: "POST", json: body }, { fetch: options.fetch, timeoutMs: options.timeoutMs ?? 60_000 });
  } catch (err) {
    throw new BatchSubmitError(`POST ${url} failed: ${summarize(err).message}`, batchId, { cause: err });
  }
  if (!answer.ok) {
    throw new BatchSubmitError(`POST ${url} answered ${answer.status}: ${failureOf(answer.text).message}`, batchId, {
      status: answer.status,
    });
  }
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(answer.text) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  if (!json || typeof json.batchId !== "string" || json.batchId.toLowerCase() !== batchId.toLowerCase()) {
    throw new BatchSubmitError(`POST ${url} answered ${answer.status} without batch ${batchId}: ${answer.text.slice(0, 200)}`, batchId);
  }
  return { batchId, txHash: isHash(json.txHash) ? json.txHash : null };
}

/**
 * The glue between a FlowMCP server's meter and the UsageLedger: each closed batch is built
 * (records → Merkle root, per-provider lines encrypted to the keys on chain now) and committed
 * by the server's key, directly or through the API's relay. A batch id already on chain counts as
 * this batch committed only when the chain holds this batch under it: the committed hash is one this
 * submitter sent, or the committed log's Merkle root and period are this batch's (its lines are
 * encrypted afresh on every build, so a batch rebuilt after a restart has another hash). Any other
 * content is a BatchIdConflictError, never a success.
 */
export function createBatchSubmitter(options: BatchSubmitterOptions): BatchSubmitter {
  const server = getAddress(options.serverAccount.address);
  const { publicClient, ledger } = options;
  const contracts = { providerRegistry: options.registry, registrar: options.registrar, encryptedERC: options.eerc };
  let chainId: Promise<number> | undefined;
  let wallet = options.walletClient;
  const log = toLogger(options.log);

  // The ledger's operator is read for every batch: the owner may name another (setOperator).
  const operatorKeySource = async (): Promise<Address | { publicKey: Point }> =>
    options.operatorPk
      ? { publicKey: options.operatorPk }
      : await publicClient.readContract({ address: ledger, abi: UsageLedgerAbi, functionName: "operator" });
  const getChainId = () =>
    (chainId ??= (publicClient.chain ? Promise.resolve(publicClient.chain.id) : publicClient.getChainId()).catch((err) => {
      chainId = undefined;
      throw err;
    }));
  /** Hashes of the batches this submitter built and sent, by batch id. */
  const sentHashes = new Map<Hex, Set<Hex>>();
  const committedBatchHash = async (batchId: Hex): Promise<Hex | null> => {
    const stored = await publicClient.readContract({
      address: ledger,
      abi: UsageLedgerAbi,
      functionName: "batchHashOf",
      args: [server, batchId],
    });
    return stored === zeroHash ? null : stored;
  };

  /** The committed batch under `closed`'s id, read back from its log and checked against the stored hash. */
  const committedContent = async (closed: ClosedBatch, stored: Hex) => {
    const logs = await publicClient.getContractEvents({
      address: ledger,
      abi: UsageLedgerAbi,
      eventName: "UsageCommitted",
      args: { server, batchId: closed.batchId },
      fromBlock: options.fromBlock ?? 0n,
      toBlock: "latest",
      strict: true,
    });
    for (const { args } of logs) {
      const batch: UsageBatch = { ...args, server, batchId: closed.batchId };
      if (batchHash(batch).toLowerCase() === stored.toLowerCase()) return batch;
    }
    return null;
  };

  /**
   * False when `closed`'s id is free on chain; true when the chain holds this batch under it;
   * a BatchIdConflictError when it holds anything else.
   */
  const isCommitted = async (closed: ClosedBatch): Promise<boolean> => {
    const stored = await committedBatchHash(closed.batchId);
    if (stored === null) return false;
    if (sentHashes.get(closed.batchId)?.has(stored.toLowerCase() as Hex)) return true;
    const local = {
      merkleRoot: recordsTree(closed.records).root,
      periodStart: BigInt(closed.periodStart),
      periodEnd: BigInt(closed.periodEnd),
    };
    const committed = await committedContent(closed, stored);
    if (
      committed &&
      committed.merkleRoot.toLowerCase() === local.merkleRoot.toLowerCase() &&
      committed.periodStart === local.periodStart &&
      committed.periodEnd === local.periodEnd
    )
      return true;
    throw new BatchIdConflictError(server, closed.sequence, closed.batchId, committed, local);
  };
  const remember = (batch: UsageBatch) => {
    const hashes = sentHashes.get(batch.batchId) ?? new Set<Hex>();
    hashes.add(batchHash(batch).toLowerCase() as Hex);
    sentHashes.set(batch.batchId, hashes);
  };
  const already = (batchId: Hex): SubmitResult => ({ batchId, txHash: null, alreadyCommitted: true });

  const build = async (closed: ClosedBatch): Promise<BuiltBatch> => {
    if (!isAddressEqual(closed.server, server)) {
      throw new BatchSubmitError(`batch of server ${closed.server} handed to the submitter of ${server}`, closed.batchId);
    }
    const providerIds = [...new Set(closed.records.map((r) => providerIdOf(r.provider)))];
    const keys = await fetchLineKeys(publicClient, contracts, await operatorKeySource(), providerIds);
    const built = buildBatch({
      server,
      sequence: closed.sequence,
      periodStart: closed.periodStart,
      periodEnd: closed.periodEnd,
      records: closed.records,
      keys,
      minLines: options.minLines,
    });
    if (built.batch.batchId !== closed.batchId) {
      throw new BatchSubmitError(`batch ${closed.sequence} has id ${closed.batchId}, expected ${built.batch.batchId}`, closed.batchId);
    }
    return built;
  };

  const commitDirect = async (closed: ClosedBatch, batch: UsageBatch): Promise<SubmitResult> => {
    wallet ??= createWalletClient({
      account: options.serverAccount,
      chain: publicClient.chain,
      transport: custom(publicClient),
    }) as WalletClient<Transport, Chain, Account>;
    let hash: Hex;
    try {
      const { request } = await publicClient.simulateContract({
        account: options.serverAccount,
        address: ledger,
        abi: UsageLedgerAbi,
        functionName: "commit",
        args: [batch],
      });
      remember(batch);
      hash = await wallet.writeContract(request);
    } catch (err) {
      if (isBatchAlreadyCommitted(err) && (await isCommitted(closed))) return already(batch.batchId);
      throw err;
    }
    return mined(closed, hash);
  };

  /** Waits for the commit transaction; a revert is success only if this batch is committed anyway (by another transaction). */
  const mined = async (closed: ClosedBatch, hash: Hex): Promise<SubmitResult> => {
    const { batchId } = closed;
    const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: options.receiptTimeoutMs ?? 600_000 });
    if (receipt.status === "success") return { batchId, txHash: hash, alreadyCommitted: false };
    if (await isCommitted(closed)) return already(batchId);
    throw new BatchSubmitError(`commit of batch ${batchId} reverted (${hash})`, batchId);
  };

  const commitRelayed = async (closed: ClosedBatch, built: BuiltBatch, apiUrl: string): Promise<SubmitResult> => {
    const deadline = BigInt(Math.floor(Date.now() / 1000) + (options.deadlineSeconds ?? 3_600));
    const typed = batchTypedData(built.batch, deadline, { chainId: await getChainId(), ledger });
    const signature = await options.serverAccount.signTypedData(typed);
    const body = submitRequestBody(built.batch, deadline, signature, options.sendRecords ? closed.records : undefined);
    const { batchId } = built.batch;
    let answer: { txHash: Hex | null };
    remember(built.batch);
    try {
      answer = await postSubmit(apiUrl, body, { fetch: options.fetch, timeoutMs: options.timeoutMs });
    } catch (err) {
      // 409: the id is taken, by this batch as built before a restart (its encryption differs) or
      // by another one. Only the chain can tell this batch committed from a pending or foreign one.
      if (err instanceof BatchSubmitError && err.status === 409 && (await isCommitted(closed))) return already(batchId);
      throw err;
    }
    if (answer.txHash) return mined(closed, answer.txHash);
    if (await isCommitted(closed)) return already(batchId);
    throw new BatchSubmitError(`the API answered for batch ${batchId} without a transaction, and the batch is not committed`, batchId);
  };

  const commit = async (closed: ClosedBatch): Promise<SubmitResult> => {
    // A batch handed over again (after a crash before its `submitted` line) is usually on chain already.
    if (await isCommitted(closed)) return already(closed.batchId);
    const built = await build(closed);
    return options.mode.kind === "direct" ? commitDirect(closed, built.batch) : commitRelayed(closed, built, options.mode.apiUrl);
  };

  const submit = async (closed: ClosedBatch): Promise<SubmitResult> => {
    const started = performance.now();
    const fields = { batchId: closed.batchId, sequence: closed.sequence, records: closed.records.length, mode: options.mode.kind };
    try {
      const result = await commit(closed);
      const ms = Math.round(performance.now() - started);
      log.info(
        { ...fields, txHash: result.txHash, alreadyCommitted: result.alreadyCommitted, ms },
        result.alreadyCommitted ? "usage batch already committed" : "usage batch committed",
      );
      return result;
    } catch (err) {
      const { code, message } = summarize(err);
      const entry = { ...fields, code, ms: Math.round(performance.now() - started) };
      if (err instanceof BatchIdConflictError) log.error(entry, `usage batch refused: ${message}`);
      else log.warn(entry, `usage batch not committed: ${message}`);
      throw err;
    }
  };

  return {
    server,
    build,
    submit,
    committedBatchHash,
    async onBatch(closed) {
      const { txHash } = await submit(closed);
      return { txHash };
    },
  };
}
