import { type Address, type Hex, recoverTypedDataAddress } from "viem";
import { parseJsonBody } from "../http/input.js";
import { parseRequest } from "../http/schema.js";
import { checkDeadline } from "../http/signed.js";
import { type SubmitRequest, submitRequest } from "../indexer-client/schemas.js";
import { batchTypedData, recordsTree, type UsageBatch } from "../usage/batch.js";

/** Checks a `POST /usage/submit` body's shape and values (`submitRequest`) and its deadline; no chain access. `now` is Unix seconds. */
export function parseSubmitRequest(body: unknown, now: number): SubmitRequest {
  const request = parseRequest(submitRequest, body);
  checkDeadline("deadline", request.deadline, now);
  return request;
}

/** A usage submission after the checks that need no chain: the records are dropped once hashed. */
export type CheckedSubmission = {
  batch: UsageBatch;
  deadline: bigint;
  signature: Hex;
  /** The address that signed the batch's EIP-712 message; undefined when the signature does not recover. */
  signer: Address | undefined;
  /** Whether the records in the body (if any) hash to the batch's Merkle root. */
  recordsMatch: boolean;
};

/**
 * The CPU-bound part of `POST /usage/submit`, from the body's JSON text: its shape and deadline
 * (`ApiInputError` when wrong), the signer, and the records' Merkle root. With a thousand records
 * in the body this is tens of milliseconds, which is why the API runs it in a worker thread
 * (`workers.ts`): the indexer shares the API's event loop.
 */
export async function checkSubmission(json: string, now: number, target: { chainId: number; ledger: Address }): Promise<CheckedSubmission> {
  const { batch, deadline, signature, records } = parseSubmitRequest(parseJsonBody(json), now);
  let signer: Address | undefined;
  try {
    signer = await recoverTypedDataAddress({ ...batchTypedData(batch, deadline, target), signature } as Parameters<
      typeof recoverTypedDataAddress
    >[0]);
  } catch {
    signer = undefined;
  }
  const recordsMatch = !records || recordsTree(records).root === batch.merkleRoot;
  return { batch, deadline, signature, signer, recordsMatch };
}
