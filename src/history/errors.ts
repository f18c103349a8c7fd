import type { Address, Hex } from "viem";
import { BaseError } from "../errors.js";

/** Errors of the provider/auditor history tools; each has a stable `code`. */
export abstract class HistoryError extends BaseError {}

/** The account is not registered (chain) or not known to the indexer (API 404); `where` says whose record lacks it. */
export class UnknownAccountError extends HistoryError {
  readonly code = "UNKNOWN_ACCOUNT";
  constructor(
    readonly account: Address,
    where: string,
  ) {
    super(
      `account ${account} has no eERC registration ${where}: register it first with "npm run cli -- register --rpc URL" and its wallet key`,
    );
  }
}

export class RpcUnreachableError extends HistoryError {
  readonly code = "RPC_UNREACHABLE";
  constructor(
    readonly url: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`RPC at ${url} is unreachable (${reason}): check that the node is running and the URL is right`, options);
  }
}

/** The RPC serves a different chain than the deployment manifest describes. */
export class ChainMismatchError extends HistoryError {
  readonly code = "CHAIN_MISMATCH";
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`the deployment manifest is for chain ${expected} but the RPC serves chain ${actual}`);
  }
}

export type RowRef = { tokenId: bigint; blockNumber: bigint; logIndex: number; kind: string; txHash: Hex };

/** One balance-history row's ciphertexts do not decrypt consistently under the account's key. */
export class HistoryRowCorruptError extends HistoryError {
  readonly code = "HISTORY_ROW_CORRUPT";
  constructor(
    readonly row: RowRef,
    cause: Error,
  ) {
    super(
      `balance history row corrupt (token ${row.tokenId}, block ${row.blockNumber}, log ${row.logIndex}, ` +
        `${row.kind}, tx ${row.txHash}): ${cause.message}`,
      { cause },
    );
  }
}

/** An incoming transfer's amount PCT does not decrypt under the receiver's key. */
export class ReceivedTransferCorruptError extends HistoryError {
  readonly code = "RECEIVED_TRANSFER_CORRUPT";
  constructor(
    readonly transfer: { tokenId: bigint; blockNumber: bigint; txHash: Hex; from: Address },
    cause: Error,
  ) {
    super(
      `incoming transfer does not decrypt (token ${transfer.tokenId}, block ${transfer.blockNumber}, ` +
        `from ${transfer.from}, tx ${transfer.txHash}): ${cause.message}`,
      { cause },
    );
  }
}
