import { buildCircuits } from "../src/build/circuits.js";
import { buildContracts } from "../src/build/contracts.js";

/** Tests run against real artifacts: build whatever circuits and contracts are stale. */
export default async function setup(): Promise<void> {
  await buildCircuits({ log: (line) => console.log(line) });
  await buildContracts();
}
