import { buildWeb } from "../src/api/app.js";
import { buildCircuits } from "../src/build/circuits.js";
import { buildContracts } from "../src/build/contracts.js";

/**
 * Tests run against real artifacts: build whatever circuits and contracts are stale, and the web
 * page once, before the files that serve it run side by side (a build empties its folder first).
 */
export default async function setup(): Promise<void> {
  await buildCircuits({ log: (line) => console.log(line) });
  await buildContracts();
  await buildWeb();
}
