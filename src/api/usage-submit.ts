import { type Address, encodeFunctionData, getAddress, type Hex, type PublicClient, zeroHash } from "viem";
import { UsageLedgerAbi } from "../../abis/UsageLedgerAbi.js";
import { summarize } from "../errors.js";
import { ApiInputError } from "../http/input.js";
import type { SubmitResult } from "../indexer-client/schemas.js";
import { batchHash, type UsageBatch } from "../usage/batch.js";
import {
  chainRead,
  checkRecoveredSigner,
  KeyedLock,
  type Relayer,
  type RevertMap,
  requestErrorFromRevert,
  withHeadroom,
} from "./relayer.js";
import { checkSubmission } from "./submit-checks.js";
import type { SubmissionChecker } from "./workers.js";

export { parseSubmitRequest } from "./submit-checks.js";

const LEDGER_REVERTS: RevertMap = {
  UnauthorisedServer: { field: "batch.server", status: 403, message: "is not an authorised server on the UsageLedger" },
  BatchAlreadyCommitted: { field: "batch.batchId", status: 409, message: "is already committed by this server" },
  NotBatchServer: { field: "batch.server", status: 400, message: "does not match the sender" },
  InvalidPeriod: { field: "batch.periodEnd", status: 400, message: "is before periodStart" },
  EmptyMerkleRoot: { field: "batch.merkleRoot", status: 400, message: "must not be zero" },
  EmptyLines: { field: "batch.encryptedLines", status: 400, message: "must not be empty" },
  SignatureExpired: { field: "deadline", status: 400, message: "has passed on chain" },
  InvalidSignature: { field: "signature", status: 401, message: "is not the batch server's signature over this batch" },
};

export type UsageSubmitterDeps = {
  relayer: Relayer;
  publicClient: PublicClient;
  chainId: number;
  ledger: Address;
  /** First block to search for a committed batch's log. */
  startBlock: number;
  /** The indexed commitment of (server, batchId), if any. */
  findIndexed(server: Address, batchId: Hex): Promise<{ batchHash: Hex; txHash: Hex } | undefined>;
  warn(message: string): void;
  now?: () => number;
  /** Runs the checks that need no chain (default: on this thread; the API uses a worker, `workerChecker`). */
  check?: SubmissionChecker;
};

/** Widest block range asked of the RPC in one `eth_getLogs` when looking for a recent commit. */
const RECENT_LOG_BLOCKS = 2_000n;
/** How many sent batches are remembered for idempotent answers before the ledger is asked. */
const SENT_MEMORY = 100_000;

/**
 * `POST /usage/submit`: checks a server-signed batch and relays `commitSigned`. One submission per
 * (server, batchId) runs at a time; a batch sent by this process is answered from memory, one
 * committed earlier from the indexer's table or the ledger's logs.
 */
export class UsageSubmitter {
  private readonly locks = new KeyedLock();
  private readonly sent = new Map<string, { batchHash: Hex; txHash: Hex }>();
  private readonly now: () => number;

  constructor(private readonly deps: UsageSubmitterDeps) {
    this.now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  }

  /** `json`: the request body's text. */
  async submit(json: string): Promise<SubmitResult> {
    const { publicClient, ledger, chainId } = this.deps;
    const check = this.deps.check ?? checkSubmission;
    const { batch, deadline, signature, signer, recordsMatch } = await check(json, this.now(), { chainId, ledger });
    await checkRecoveredSigner(publicClient, batch.server, signer, "the batch server");
    if (!recordsMatch) throw new ApiInputError("records", "do not hash to batch.merkleRoot");
    const hash = batchHash(batch);
    const key = `${batch.server.toLowerCase()}/${batch.batchId}`;
    return this.locks.run(key, () => this.relay(key, batch, hash, deadline, signature));
  }

  private async relay(key: string, batch: UsageBatch, hash: Hex, deadline: bigint, signature: Hex): Promise<SubmitResult> {
    const { publicClient, ledger, relayer } = this.deps;
    const conflict = () => new ApiInputError("batch.batchId", "is already used by this server for a different batch", 409);
    const sent = this.sent.get(key);
    if (sent) {
      if (sent.batchHash !== hash) throw conflict();
      return { batchId: batch.batchId, txHash: sent.txHash };
    }
    const [stored, authorised] = await chainRead(() =>
      Promise.all([
        publicClient.readContract({
          address: ledger,
          abi: UsageLedgerAbi,
          functionName: "batchHashOf",
          args: [batch.server, batch.batchId],
        }),
        publicClient.readContract({ address: ledger, abi: UsageLedgerAbi, functionName: "isAuthorisedServer", args: [batch.server] }),
      ]),
    );
    if (stored !== zeroHash) {
      if (stored.toLowerCase() !== hash) throw conflict();
      return { batchId: batch.batchId, txHash: await this.committedTx(batch.server, batch.batchId, hash) };
    }
    if (!authorised) throw new ApiInputError("batch.server", "is not an authorised server on the UsageLedger", 403);

    const call = { address: ledger, abi: UsageLedgerAbi, functionName: "commitSigned", args: [batch, deadline, signature] } as const;
    let txHash: Hex;
    try {
      const gas = await publicClient.estimateContractGas({ ...call, account: relayer.address });
      txHash = await relayer.send({ to: ledger, data: encodeFunctionData(call), gas: withHeadroom(gas) });
    } catch (err) {
      throw requestErrorFromRevert(err, LEDGER_REVERTS);
    }
    this.remember(key, hash, txHash);
    void this.watch(key, batch, txHash);
    return { batchId: batch.batchId, txHash };
  }

  private remember(key: string, batchHash: Hex, txHash: Hex): void {
    this.sent.set(key, { batchHash, txHash });
    if (this.sent.size > SENT_MEMORY) this.sent.delete(this.sent.keys().next().value!);
  }

  /** Forgets a sent batch whose transaction failed, so that a resubmission relays it again. */
  private async watch(key: string, batch: UsageBatch, txHash: Hex): Promise<void> {
    let outcome: string;
    try {
      const receipt = await this.deps.publicClient.waitForTransactionReceipt({ hash: txHash, timeout: 600_000 });
      if (receipt.status === "success") return;
      outcome = "reverted";
    } catch (err) {
      outcome = `was not mined (${summarize(err).message})`;
    }
    if (this.sent.get(key)?.txHash === txHash) this.sent.delete(key);
    this.deps.warn(`usage batch ${batch.batchId} of ${batch.server}: transaction ${txHash} ${outcome}; a resubmission will relay it again`);
  }

  /** The transaction that committed a batch: from the indexer's table, else from the ledger's logs. */
  private async committedTx(server: Address, batchId: Hex, hash: Hex): Promise<Hex | null> {
    const indexed = await this.deps.findIndexed(server, batchId);
    if (indexed && indexed.batchHash.toLowerCase() === hash) return indexed.txHash;
    const { publicClient, ledger, startBlock } = this.deps;
    try {
      const latest = await publicClient.getBlockNumber();
      const first = BigInt(startBlock);
      const ranges = latest - first > RECENT_LOG_BLOCKS ? [latest - RECENT_LOG_BLOCKS, first] : [first];
      for (const fromBlock of ranges) {
        const logs = await publicClient.getContractEvents({
          address: ledger,
          abi: UsageLedgerAbi,
          eventName: "UsageCommitted",
          args: { server: getAddress(server), batchId },
          fromBlock,
          toBlock: latest,
        });
        if (logs.length > 0) return logs[0]!.transactionHash;
      }
    } catch (err) {
      this.deps.warn(`usage batch ${batchId} of ${server} is committed but its transaction was not found: ${summarize(err).message}`);
    }
    return null;
  }
}
