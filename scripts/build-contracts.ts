import { buildContracts } from "../src/build/contracts.js";
import { run } from "./run.js";

// npm run build:contracts
run(() => buildContracts());
