import { parseArgs } from "node:util";
import { DEFAULT_FEE_BPS, DEFAULT_PERIOD_UNIT } from "../config/operator.js";
import { BaseError } from "../errors.js";
import { parseUsdc } from "../money/usdc.js";
import { isPeriodUnit, type PeriodUnit } from "../usage/period.js";

export const USAGE = `Usage: npm run cli -- <command> (--api URL | --rpc URL | --agent URL) [options]

Decrypts eERC amounts locally with your own key; the key never leaves this process.

Commands:
  history    a provider's balance history and incoming transfers, decrypted
  audit      every auditor PCT decrypted and totalled per period, token and kind
  usage      a provider's committed usage (calls, billable calls, amount) per batch
             and in total, decrypted; with --records, checked against call records
  withdraw   --rpc only: a provider claims --amount USDC of its encrypted balance to
             its wallet, with a withdraw proof made here (no indexer, API or agent needed)
  reconcile  --api: the auditor recomputes every payout cycle from the usage lines and
             checks, per cycle and provider, paid == owed; exit 1 on any mismatch
  distribute --agent URL: the operator asks the payout agent to run a cycle now
             (a signed request) and follows its progress

Source (exactly one):
  --api URL              BackendShield query API (the indexer: REST; GraphQL for usage)
  --rpc URL              JSON-RPC endpoint only; addresses and start block from the manifest
  --agent URL            the payout agent (distribute)

Key (never printed):
  PRIVATE_KEY            env: the wallet private key (0x + 64 hex); the eERC key is
                         derived from the wallet's signature as the eERC SDK does
  --key-file PATH        file holding the wallet private key, instead of PRIVATE_KEY
  --eerc-key-file PATH   file holding an already-derived eERC private key (hex);
                         needs --address
  --address ADDRESS      the account the --eerc-key-file key belongs to

Options:
  --token-id N           history: only this token
  --period day|month     audit: group by UTC day (default) or month
  --amount USDC          withdraw: the amount, in USDC (up to 6 decimals, e.g. 0.000001)
  --fee-bps N            reconcile: the platform fee in basis points (default 1000)
  --pricing-period P     reconcile: month (default) or day, as the agent prices
  --operator ADDRESS     reconcile: the operator's account (its registered key and the
                         auditor's give the free pool's reserves); required
  --payers A,B,...       reconcile: the operator's payer accounts, current and past
                         (default: every account that sent a tagged payout)
  --records FILE         usage: call records to check against the committed batches
                         (a meter spool, JSONL of records, or a JSON array; a record
                         may carry its batchId and Merkle proof); exit 1 on a mismatch
  --manifest PATH        deployment manifest for --rpc
                         (default: $DEPLOYMENT_FILE or deployments/$NETWORK.json)
  --json                 JSON output; amounts as micro-USDC decimal strings
  -h, --help             this text

Exit codes: 0 ok, 1 runtime error, 2 usage error (including an invalid key).
usage --records exits 1 when any record does not match what was committed;
reconcile exits 1 when any cycle's payouts differ from what it owed, or when a payer
sent a transfer that is not an accountable payout.`;

export class CommandLineError extends BaseError {
  readonly code = "USAGE";
}

/** The key given is not a key at all; its content is never echoed. */
export class InvalidKeyError extends BaseError {
  readonly code = "INVALID_KEY";
}

export type CliIo = {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
};

const OPTIONS = {
  api: { type: "string" },
  rpc: { type: "string" },
  agent: { type: "string" },
  amount: { type: "string" },
  "fee-bps": { type: "string" },
  "pricing-period": { type: "string" },
  payers: { type: "string" },
  operator: { type: "string" },
  "token-id": { type: "string" },
  period: { type: "string" },
  records: { type: "string" },
  "key-file": { type: "string" },
  "eerc-key-file": { type: "string" },
  address: { type: "string" },
  manifest: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export type Values = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]["type"] extends "boolean" ? boolean : string };

const COMMANDS = ["history", "audit", "usage", "withdraw", "reconcile", "distribute"] as const;
export type CommandName = (typeof COMMANDS)[number];
const isCommandName = (name: string): name is CommandName => (COMMANDS as readonly string[]).includes(name);

export type Command = {
  name: CommandName;
  /** withdraw: the amount in micro-USDC. */
  amount?: bigint;
  source: { kind: "api"; url: string } | { kind: "rpc"; url: string; manifest?: string } | { kind: "agent"; url: string };
  tokenId?: bigint;
  period: PeriodUnit;
  /** reconcile: the settlement rules (the agent's defaults unless given). */
  settlement: { feeBps: number; periodUnit: PeriodUnit };
  records?: string;
  json: boolean;
  values: Values;
};

function httpUrl(value: string, flag: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CommandLineError(`${flag} "${value}" is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new CommandLineError(`${flag} must be an http(s) URL`);
  return value;
}

/** "--amount -1" as "--amount=-1": node's parser calls a value that starts with a dash ambiguous, so the value's own check answers. */
function joinNegativeValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a.startsWith("--") && !a.includes("=") && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

function unknownOption(flag: string): string {
  const name = flag.replace(/^-+/, "");
  const [closest] = Object.keys(OPTIONS)
    .map((o) => [o, distance(name, o)] as const)
    .sort((x, y) => x[1] - y[1]);
  return closest && closest[1] <= 2 ? `unknown option ${flag}: did you mean --${closest[0]}?` : `unknown option ${flag}`;
}

export function parseCommand(argv: string[]): Command | "help" {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: joinNegativeValues(argv), options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    const unknown = /Unknown option '(-{1,2}[^']+)'/.exec((e as Error).message)?.[1];
    if (unknown) throw new CommandLineError(unknownOption(unknown));
    throw new CommandLineError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return "help";
  const [name, ...rest] = positionals;
  if (!name) throw new CommandLineError(`missing command: ${COMMANDS.join(", ")}`);
  if (!isCommandName(name)) throw new CommandLineError(`unknown command "${name}": expected ${COMMANDS.join(", ")}`);
  if (rest.length > 0) throw new CommandLineError(`unexpected argument "${rest[0]}"`);

  const given = [values.api, values.rpc, values.agent].filter((v) => v !== undefined).length;
  if (name === "distribute") {
    if (values.agent === undefined || given !== 1) throw new CommandLineError("distribute takes --agent URL (and no --api or --rpc)");
  } else if (values.agent !== undefined) {
    throw new CommandLineError("--agent is only used with distribute");
  } else if (given !== 1) {
    throw new CommandLineError("give exactly one of --api URL or --rpc URL");
  }
  if (name === "withdraw" && values.rpc === undefined)
    throw new CommandLineError("withdraw needs --rpc URL: a claim goes straight to the chain");
  if (name === "reconcile" && values.api === undefined) throw new CommandLineError("reconcile needs --api URL (the indexer)");
  if (values.manifest !== undefined && values.rpc === undefined) throw new CommandLineError("--manifest is only used with --rpc");
  const source: Command["source"] =
    values.agent !== undefined
      ? { kind: "agent", url: httpUrl(values.agent, "--agent") }
      : values.api !== undefined
        ? { kind: "api", url: httpUrl(values.api, "--api") }
        : { kind: "rpc", url: httpUrl(values.rpc!, "--rpc"), manifest: values.manifest };

  if (values.amount !== undefined && name !== "withdraw") throw new CommandLineError("--amount is only used with withdraw");
  if (name === "withdraw" && values.amount === undefined) throw new CommandLineError("withdraw needs --amount USDC");
  let amount: bigint | undefined;
  if (values.amount !== undefined) {
    try {
      amount = parseUsdc(values.amount);
    } catch (e) {
      throw new CommandLineError(`--amount: ${(e as Error).message}`);
    }
    if (amount <= 0n) throw new CommandLineError(`--amount must be more than 0, got ${values.amount}: the USDC to withdraw, e.g. 0.5`);
  }
  for (const flag of ["fee-bps", "pricing-period", "payers", "operator"] as const) {
    if (values[flag] !== undefined && name !== "reconcile") throw new CommandLineError(`--${flag} is only used with reconcile`);
  }
  const settlement: Command["settlement"] = { feeBps: DEFAULT_FEE_BPS, periodUnit: DEFAULT_PERIOD_UNIT };
  if (values["fee-bps"] !== undefined) {
    if (!/^\d{1,5}$/.test(values["fee-bps"]) || Number(values["fee-bps"]) > 10_000) {
      throw new CommandLineError("--fee-bps must be an integer from 0 to 10000");
    }
    settlement.feeBps = Number(values["fee-bps"]);
  }
  const pricingPeriod = values["pricing-period"];
  if (pricingPeriod !== undefined) {
    if (!isPeriodUnit(pricingPeriod)) throw new CommandLineError("--pricing-period must be month or day");
    settlement.periodUnit = pricingPeriod;
  }
  if (name === "reconcile" && values.operator === undefined)
    throw new CommandLineError("reconcile needs --operator ADDRESS (the operator's account)");
  if (values.operator !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(values.operator))
    throw new CommandLineError(`--operator: "${values.operator}" is not an address`);
  const badPayer = values.payers?.split(",").find((a) => !/^0x[0-9a-fA-F]{40}$/.test(a.trim()));
  if (badPayer !== undefined) throw new CommandLineError(`--payers: "${badPayer}" is not an address`);

  let tokenId: bigint | undefined;
  if (values["token-id"] !== undefined) {
    if (name !== "history") throw new CommandLineError("--token-id is only used with history");
    if (!/^\d{1,78}$/.test(values["token-id"])) throw new CommandLineError("--token-id must be a non-negative integer");
    tokenId = BigInt(values["token-id"]);
  }
  let period: PeriodUnit = "day";
  if (values.period !== undefined) {
    if (name !== "audit") throw new CommandLineError("--period is only used with audit");
    if (!isPeriodUnit(values.period)) throw new CommandLineError("--period must be day or month");
    period = values.period;
  }

  if (values.records !== undefined && name !== "usage") throw new CommandLineError("--records is only used with usage");
  if (values.records === "") throw new CommandLineError("--records needs a file path");

  if (values["eerc-key-file"] !== undefined) {
    if (values["key-file"] !== undefined) throw new CommandLineError("give either --key-file or --eerc-key-file, not both");
    if (values.address === undefined) throw new CommandLineError("--eerc-key-file needs --address (the account the key belongs to)");
    if (!/^0x[0-9a-fA-F]{40}$/.test(values.address)) throw new CommandLineError("--address is not an address");
  } else if (values.address !== undefined) {
    throw new CommandLineError("--address is only used with --eerc-key-file");
  }
  return { name, source, amount, tokenId, period, settlement, records: values.records, json: values.json ?? false, values };
}
