// Worker thread of `POST /usage/submit` (started by `workerChecker` in workers.ts).
import { checkSubmission } from "./submit-checks.js";
import { type CheckPayload, serveRequests } from "./workers.js";

serveRequests(({ json, now, target }: CheckPayload) => checkSubmission(json, now, target));
