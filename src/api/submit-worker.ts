// Worker thread of `POST /usage/submit` (started by submit-pool.ts): runs `checkSubmission` off
// the event loop that the API shares with the indexer.
import { parentPort } from "node:worker_threads";
import { ApiInputError } from "../http/input.js";
import { checkSubmission } from "./submit-checks.js";
import type { CheckRequest, CheckResponse } from "./submit-pool.js";

parentPort?.on("message", async ({ id, json, now, target }: CheckRequest) => {
  let response: CheckResponse;
  try {
    response = { id, value: await checkSubmission(json, now, target) };
  } catch (err) {
    response =
      err instanceof ApiInputError
        ? { id, inputError: { field: err.field, message: err.message, status: err.status } }
        : { id, failure: err instanceof Error ? err.message : String(err) };
  }
  parentPort?.postMessage(response);
});
