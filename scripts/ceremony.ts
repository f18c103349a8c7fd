import { parseArgs } from "node:util";
import {
  applyBeacon,
  CeremonyInputError,
  contribute,
  exportCeremony,
  initCeremony,
  parseCircuits,
  verifyCeremony,
} from "../src/build/ceremony.js";
import { run } from "./run.js";

const USAGE = `npm run ceremony -- <command> …  (docs/security.md, Trusted setup)
  init <dir> [--ptau FILE]                          each circuit's first key, from its r1cs and the ptau
  contribute <dir> --name NAME [--entropy TEXT]     add your contribution to the newest key of each circuit
  verify [<dir>] [--ptau FILE]                      check the newest keys (without <dir>: build/'s) against r1cs and ptau; list contributions
  beacon <dir> --hash HEX [--iterations N]          the coordinator's public random beacon, last
  export <dir> [--ptau FILE]                        verify the final keys and install them in build/ for deploy
every command takes --circuit NAME (repeatable) to work on some circuits only; --ptau defaults to PTAU_FILE, else the development ptau`;

run(async () => {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse();
  } catch (err) {
    throw new CeremonyInputError("arguments", `${(err as Error).message}\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  const [command, dir, ...extra] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return;
  }
  if (extra.length) throw new CeremonyInputError(extra[0]!, "is one argument too many");
  const circuits = parseCircuits(values.circuit ?? []);
  const needDir = () => {
    if (!dir) throw new CeremonyInputError("<dir>", `is required: npm run ceremony -- ${command} <dir>`);
    return dir;
  };
  switch (command) {
    case "init":
      await initCeremony({ dir: needDir(), circuits, ptau: values.ptau });
      return;
    case "contribute":
      await contribute({ dir: needDir(), circuits, name: values.name ?? "", entropy: values.entropy });
      return;
    case "verify":
      await verifyCeremony({ dir, circuits, ptau: values.ptau });
      return;
    case "beacon": {
      if (!values.hash) throw new CeremonyInputError("--hash", "is required: the beacon's seed in hex");
      const iterations = values.iterations === undefined ? undefined : Number(values.iterations);
      await applyBeacon({ dir: needDir(), circuits, beaconHash: values.hash, iterationsExp: iterations, name: values.name });
      return;
    }
    case "export":
      await exportCeremony({ dir: needDir(), circuits, ptau: values.ptau });
      return;
    default:
      throw new CeremonyInputError(command, `is not a command\n${USAGE}`);
  }
});

function parse() {
  return parseArgs({
    allowPositionals: true,
    options: {
      circuit: { type: "string", multiple: true },
      ptau: { type: "string" },
      name: { type: "string" },
      entropy: { type: "string" },
      hash: { type: "string" },
      iterations: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}
