// Worker thread of the API's payout ledger (started by `workerDecryptor` in workers.ts).
import { decryptOperatorLines, serveRequests } from "./workers.js";

serveRequests(decryptOperatorLines);
