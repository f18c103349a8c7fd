import { buildCircuits } from "../src/build/circuits.js";
import { CIRCUIT_NAMES, type CircuitName } from "../src/eerc/artifacts.js";
import { run } from "./run.js";

// npm run build:circuits [name…] [--no-keys]
run(async () => {
  const names = process.argv.slice(2).filter((n) => !n.startsWith("-")) as CircuitName[];
  const { built } = await buildCircuits({ names: names.length ? names : CIRCUIT_NAMES, keys: !process.argv.includes("--no-keys") });
  console.log(built.length ? `built ${built.join(", ")}` : "circuits up to date");
});
