import { Command as Commander, CommanderError, Option } from "commander";
import { type Address, getAddress, isAddress } from "viem";
import { parseUsdc } from "../money/usdc.js";
import { isPeriodUnit, type PeriodUnit } from "../usage/period.js";
import { freePool, freeQuotaThenPerCall, OPEN_ENDED_TIER, type Pricing, perCall, type Tier, tiered } from "../usage/pricing.js";
import { isValidNamespace } from "../usage/registry.js";
import { CommandLineError } from "./args.js";

/** No cap on a server binding: uint64 max (UsageLedger). */
const NO_CAP = (1n << 64n) - 1n;

// The CLI's commands and options, each with its own --help. Parsing only builds a `Command`;
// nothing here touches a network or a key.

/** Every option, by its long name: its flags and help text. Commands pick theirs from here. */
const OPTIONS = {
  api: ["--api <url>", "the BackendShield query API (the indexer)"],
  rpc: ["--rpc <url>", "a JSON-RPC endpoint; addresses and start block from the manifest"],
  agent: ["--agent <url>", "the payout agent"],
  manifest: ["--manifest <path>", "deployment manifest (default: $DEPLOYMENT_FILE or deployments/$NETWORK.json)"],
  "key-file": ["--key-file <path>", "file holding the wallet private key, instead of PRIVATE_KEY"],
  "eerc-key-file": ["--eerc-key-file <path>", "file holding an already-derived eERC private key (hex); needs --address"],
  address: ["--address <address>", "the account the --eerc-key-file key belongs to"],
  "token-id": ["--token-id <n>", "only this eERC token"],
  period: ["--period <unit>", "group by UTC day (default) or month"],
  records: ["--records <file>", "call records to check against the committed batches (spool JSONL, JSONL or a JSON array)"],
  amount: ["--amount <usdc>", "the amount in USDC, up to 6 decimals (e.g. 0.000001)"],
  operator: ["--operator <address>", "the operator's account"],
  payers: ["--payers <a,b,...>", "the operator's payer accounts, current and past (default: every account that sent a tagged payout)"],
  "fee-bps": ["--fee-bps <n>", "the platform fee in basis points"],
  "pricing-period": ["--pricing-period <unit>", "month or day"],
  "pending-cap": [
    "--pending-cap <n>",
    "the eERC's cap on a balance's pending amount PCTs (MAX_PENDING_AMOUNT_PCTS(), 300 on the hardened eERC): a provider paid nothing while its queue held that many is deferred, not short",
  ],
  from: ["--from <date>", "the UTC day the change applies from (YYYY-MM-DD; default: the next pricing period)"],
  payout: ["--payout <address>", "the provider's payout account (registered in the eERC)"],
  price: ["--price <usdc>", "per-call price in USDC (with --free-calls: after the free calls)"],
  "free-calls": ["--free-calls <n>", "calls per pricing period that are free before --price applies"],
  "free-pool": ["--free-pool [weight]", "a free API paid from the revenue pool, with this weight (default 1)"],
  tiers: ["--tiers <list>", "tiered pricing per period: upToCalls:USDC,... with * for the open-ended last tier (e.g. 1000:0,*:0.001)"],
  active: ["--active", "take calls again"],
  inactive: ["--inactive", "stop earning: calls are priced 0 from the next pricing period"],
  providers: ["--providers <a,b,...>", "the namespaces of the providers the server meters (bound with the caps below)"],
  "cap-batch": ["--cap-batch <n>", "most billable calls one batch counts per provider (default: no cap)"],
  "cap-period": ["--cap-period <n>", "most billable calls the server's batches of one pricing period count per provider (default: no cap)"],
  json: ["--json", "JSON output; amounts as micro-USDC decimal strings"],
} as const satisfies Record<string, readonly [string, string]>;

export type OptionName = keyof typeof OPTIONS;
export type Values = {
  [K in OptionName]?: K extends "json" | "active" | "inactive" ? boolean : K extends "free-pool" ? string | true : string;
};

export const COMMAND_NAMES = [
  "history",
  "audit",
  "usage",
  "withdraw",
  "reconcile",
  "distribute",
  "register",
  "provider add",
  "provider update",
  "server authorise",
  "server revoke",
  "payer fund",
  "settlement show",
  "settlement set",
  "doctor",
] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

export type Source = { kind: "api"; url: string } | { kind: "rpc"; url: string; manifest?: string } | { kind: "agent"; url: string };

export type Command = {
  name: CommandName;
  source: Source;
  /** withdraw, payer fund: micro-USDC. */
  amount?: bigint;
  tokenId?: bigint;
  period: PeriodUnit;
  /** reconcile, settlement set: the values given, checked against (or recorded as) the chain's record. */
  settlement: { feeBps?: number; periodUnit?: PeriodUnit };
  /** reconcile: the eERC's pending-queue cap that deferrals are checked against. */
  pendingCap?: bigint;
  records?: string;
  /** provider add|update: the namespace; server authorise|revoke: the server's address. */
  target?: string;
  pricing?: Pricing;
  payout?: Address;
  active?: boolean;
  /** server authorise|revoke: the namespaces of --providers, and the caps of server authorise (uint64 max: no cap). */
  providers?: string[];
  caps?: { perBatch: bigint; perPeriod: bigint };
  json: boolean;
  values: Values;
};

const KEY_OPTIONS = ["key-file", "eerc-key-file", "address"] as const;
const WALLET = ["key-file"] as const;

type Spec = { summary: string; args?: string; options: readonly OptionName[]; details?: string };

const SPECS: Record<CommandName, Spec> = {
  history: {
    summary: "a provider's balance history, incoming transfers and pending payout, decrypted",
    options: ["api", "rpc", "manifest", "token-id", ...KEY_OPTIONS, "json"],
  },
  audit: {
    summary: "every auditor PCT decrypted and totalled per period, token and kind",
    options: ["api", "rpc", "manifest", "period", ...KEY_OPTIONS, "json"],
  },
  usage: {
    summary: "a provider's committed usage per batch and in total, decrypted; with --records, checked (exit 1 on a mismatch)",
    options: ["api", "rpc", "manifest", "records", ...KEY_OPTIONS, "json"],
  },
  withdraw: {
    summary: "a provider claims --amount USDC of its encrypted balance to its wallet (needs only --rpc)",
    options: ["rpc", "manifest", "amount", ...WALLET, "json"],
  },
  reconcile: {
    summary: "the auditor recomputes every payout cycle and checks paid == owed (exit 1 on a mismatch)",
    options: ["api", "operator", "payers", "fee-bps", "pricing-period", "pending-cap", ...KEY_OPTIONS, "json"],
    details:
      "The fee and pricing period come from the ProviderRegistry's record; --fee-bps and --pricing-period\n" +
      "only assert what you expect, and a value that disagrees with the record is refused. Without\n" +
      "--pending-cap, a provider passed over because its pending queue was full shows as short.",
  },
  distribute: {
    summary: "the operator asks the payout agent to run a cycle now (a signed request) and follows it",
    options: ["agent", ...WALLET, "json"],
  },
  register: {
    summary: "register the wallet's eERC account (a registration proof made here), for a provider, payer or operator",
    options: ["rpc", "manifest", ...WALLET, "json"],
  },
  "provider add": {
    summary: "the operator registers a provider: its namespace, payout account and pricing",
    args: "<namespace>",
    options: ["rpc", "api", "manifest", "payout", "price", "free-calls", "free-pool", "tiers", ...WALLET, "json"],
    details:
      "With --rpc the operator's wallet sends the transaction; with --api the operator signs and the API\n" +
      "relays it. Pricing: --price, --price with --free-calls, --free-pool [weight] or --tiers.",
  },
  "provider update": {
    summary: "the operator changes a provider's pricing, payout account or activity (pricing applies from the next period)",
    args: "<namespace>",
    options: ["rpc", "api", "manifest", "payout", "price", "free-calls", "free-pool", "tiers", "active", "inactive", ...WALLET, "json"],
  },
  "server authorise": {
    summary: "the operator lets a metering server (its address) commit usage batches, and binds it to the providers it meters",
    args: "<address>",
    options: ["rpc", "manifest", "providers", "cap-batch", "cap-period", ...WALLET, "json"],
    details:
      "Settlement counts a server's lines only for the providers it is bound to (--providers), up to\n" +
      "--cap-batch billable calls per batch and --cap-period per pricing period for each provider; the\n" +
      "rest is ignored and reported. Again with other --providers or caps, it adds or replaces bindings.",
  },
  "server revoke": {
    summary: "the operator stops a metering server from committing usage batches (with --providers: unbinds only those)",
    args: "<address>",
    options: ["rpc", "manifest", "providers", ...WALLET, "json"],
  },
  "payer fund": {
    summary: "deposit --amount USDC from the wallet into its encrypted balance, from which the agent pays",
    options: ["rpc", "manifest", "amount", ...WALLET, "json"],
  },
  "settlement show": {
    summary: "the platform fee and pricing period recorded on chain, with their history",
    options: ["rpc", "manifest", "json"],
  },
  "settlement set": {
    summary: "the operator records a new platform fee and/or pricing period, applying from the next period",
    options: ["rpc", "manifest", "fee-bps", "pricing-period", "from", ...WALLET, "json"],
  },
  doctor: {
    summary: "check a deployment end to end: one line per check, with the fix",
    options: ["rpc", "api", "agent", "manifest", "operator", ...WALLET, "json"],
    details:
      "Checks the manifest against the chain, the contracts' code, the auditor, the proving artifacts\n" +
      "against the verifiers, the operator's registration, the indexer's lag, the agent, and (with the\n" +
      "operator's wallet key) the payer balance against what is owed next. Exit 1 when a check fails.",
  },
};

const GROUPS: Record<string, string> = {
  provider: "add or update a provider (operator)",
  server: "authorise or revoke a metering server (operator)",
  payer: "fund the payer's encrypted balance (operator)",
  settlement: "show or change the recorded platform fee and pricing period",
};

const ROOT_HELP_AFTER = `
Keys (never printed):
  PRIVATE_KEY            env: the wallet private key (0x + 64 hex); the eERC key is derived
                         from the wallet's signature as the eERC SDK does

Run "npm run cli -- <command> --help" for a command's options.

Exit codes: 0 ok, 1 runtime error, 2 usage error (including an invalid key).`;

const isAddressText = (v: string) => /^0x[0-9a-fA-F]{40}$/.test(v);

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

function usdc(flag: string, value: string): bigint {
  let amount: bigint;
  try {
    amount = parseUsdc(value);
  } catch (e) {
    throw new CommandLineError(`${flag}: ${(e as Error).message}`);
  }
  return amount;
}

function addressFlag(flag: string, value: string): Address {
  if (!isAddressText(value)) throw new CommandLineError(`${flag}: "${value}" is not an address`);
  return getAddress(value);
}

function uintFlag(flag: string, value: string, what = "a non-negative integer"): bigint {
  if (!/^\d{1,20}$/.test(value)) throw new CommandLineError(`${flag} must be ${what}`);
  return BigInt(value);
}

/** The pricing flags as a `Pricing`; undefined when none was given. */
function pricingOf(v: Values): Pricing | undefined {
  const given = [v.price !== undefined || v["free-calls"] !== undefined, v["free-pool"] !== undefined, v.tiers !== undefined].filter(
    Boolean,
  ).length;
  if (given === 0) return undefined;
  if (given > 1) throw new CommandLineError("give one pricing: --price (with --free-calls), --free-pool or --tiers");
  if (v["free-pool"] !== undefined) {
    const weight = v["free-pool"] === true ? 1n : uintFlag("--free-pool", v["free-pool"], "a positive integer weight");
    if (weight === 0n || weight > 0xffffffffn) throw new CommandLineError("--free-pool must be a positive integer weight below 2^32");
    return freePool(Number(weight));
  }
  if (v.tiers !== undefined) {
    const tiers: Tier[] = v.tiers.split(",").map((part) => {
      const [upTo, price] = part.split(":");
      if (upTo === undefined || price === undefined) throw new CommandLineError(`--tiers: "${part}" is not upToCalls:USDC`);
      return {
        upToCalls: upTo.trim() === "*" ? OPEN_ENDED_TIER : uintFlag("--tiers", upTo.trim()),
        priceMicro: usdc("--tiers", price.trim()),
      };
    });
    return tiered(tiers);
  }
  if (v.price === undefined) throw new CommandLineError("--free-calls needs --price USDC (the price after the free calls)");
  const price = usdc("--price", v.price);
  if (v["free-calls"] !== undefined) return freeQuotaThenPerCall(uintFlag("--free-calls", v["free-calls"]), price);
  if (price === 0n) throw new CommandLineError("--price must be more than 0 (a free API takes --free-pool)");
  return perCall(price);
}

/** Checks what only the whole set of flags can tell, and builds the command. */
function toCommand(name: CommandName, values: Values, positional: string | undefined): Command {
  const spec = SPECS[name];
  const sources = (["api", "rpc", "agent"] as const).filter((k) => values[k] !== undefined);
  const accepts = (k: OptionName) => spec.options.includes(k);
  let source: Source;
  if (name === "doctor" || name === "provider add" || name === "provider update") {
    if (values.rpc === undefined)
      throw new CommandLineError(
        name === "doctor"
          ? "doctor needs --rpc URL (and --api URL, --agent URL to check those)"
          : `${name} needs --rpc URL (add --api URL to have the API relay the signed change)`,
      );
    source = { kind: "rpc", url: httpUrl(values.rpc, "--rpc"), manifest: values.manifest };
    if (values.api !== undefined) httpUrl(values.api, "--api");
    if (values.agent !== undefined) httpUrl(values.agent, "--agent");
  } else {
    const offered = (["api", "rpc", "agent"] as const).filter(accepts);
    if (sources.length !== 1) {
      if (name === "withdraw") throw new CommandLineError("withdraw needs --rpc URL: a claim goes straight to the chain");
      if (name === "reconcile") throw new CommandLineError("reconcile needs --api URL (the indexer)");
      if (name === "distribute") throw new CommandLineError("distribute takes --agent URL");
      throw new CommandLineError(
        offered.length === 1 ? `${name} needs --${offered[0]} URL` : `give exactly one of ${offered.map((o) => `--${o} URL`).join(" or ")}`,
      );
    }
    const kind = sources[0]!;
    const url = httpUrl(values[kind]!, `--${kind}`);
    source = kind === "rpc" ? { kind, url, manifest: values.manifest } : { kind, url };
    if (values.manifest !== undefined && kind !== "rpc") throw new CommandLineError("--manifest is only used with --rpc");
  }

  let amount: bigint | undefined;
  if (accepts("amount")) {
    if (values.amount === undefined) throw new CommandLineError(`${name} needs --amount USDC`);
    amount = usdc("--amount", values.amount);
    if (amount <= 0n)
      throw new CommandLineError(
        `--amount must be more than 0, got ${values.amount}: the USDC to ${name === "withdraw" ? "withdraw" : "deposit"}, e.g. 0.5`,
      );
  }

  const settlement: Command["settlement"] = {};
  if (values["fee-bps"] !== undefined) {
    if (!/^\d{1,5}$/.test(values["fee-bps"]) || Number(values["fee-bps"]) > 10_000) {
      throw new CommandLineError("--fee-bps must be an integer from 0 to 10000");
    }
    settlement.feeBps = Number(values["fee-bps"]);
  }
  if (values["pricing-period"] !== undefined) {
    if (!isPeriodUnit(values["pricing-period"])) throw new CommandLineError("--pricing-period must be month or day");
    settlement.periodUnit = values["pricing-period"];
  }
  if (name === "settlement set") {
    if (settlement.feeBps === undefined && settlement.periodUnit === undefined)
      throw new CommandLineError("settlement set needs --fee-bps N and/or --pricing-period month|day");
    if (values.from !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(values.from))
      throw new CommandLineError(`--from must be a UTC day as YYYY-MM-DD, got "${values.from}"`);
  }
  if (name === "reconcile" && values.operator === undefined)
    throw new CommandLineError("reconcile needs --operator ADDRESS (the operator's account)");
  if (values.operator !== undefined) addressFlag("--operator", values.operator);
  let pendingCap: bigint | undefined;
  if (values["pending-cap"] !== undefined) {
    pendingCap = uintFlag("--pending-cap", values["pending-cap"], "a positive integer (the eERC's MAX_PENDING_AMOUNT_PCTS())");
    if (pendingCap === 0n) throw new CommandLineError("--pending-cap must be a positive integer (the eERC's MAX_PENDING_AMOUNT_PCTS())");
  }
  const badPayer = values.payers?.split(",").find((a) => !isAddressText(a.trim()));
  if (badPayer !== undefined) throw new CommandLineError(`--payers: "${badPayer}" is not an address`);

  let tokenId: bigint | undefined;
  if (values["token-id"] !== undefined) tokenId = uintFlag("--token-id", values["token-id"]);
  let period: PeriodUnit = "day";
  if (values.period !== undefined) {
    if (!isPeriodUnit(values.period)) throw new CommandLineError("--period must be day or month");
    period = values.period;
  }
  if (values.records === "") throw new CommandLineError("--records needs a file path");

  if (values["eerc-key-file"] !== undefined) {
    if (values["key-file"] !== undefined) throw new CommandLineError("give either --key-file or --eerc-key-file, not both");
    if (values.address === undefined) throw new CommandLineError("--eerc-key-file needs --address (the account the key belongs to)");
    if (!isAddressText(values.address)) throw new CommandLineError("--address is not an address");
  } else if (values.address !== undefined) {
    throw new CommandLineError("--address is only used with --eerc-key-file");
  }

  const command: Command = {
    name,
    source,
    amount,
    tokenId,
    period,
    settlement,
    ...(pendingCap !== undefined && { pendingCap }),
    records: values.records,
    json: values.json ?? false,
    values,
  };
  if (name === "provider add" || name === "provider update") {
    if (!isValidNamespace(positional))
      throw new CommandLineError(`"${positional}" is not a namespace: 1 to 64 ASCII letters or digits, as the registry requires`);
    command.target = positional;
    command.pricing = pricingOf(values);
    if (values.payout !== undefined) command.payout = addressFlag("--payout", values.payout);
    if (values.active && values.inactive) throw new CommandLineError("give --active or --inactive, not both");
    if (values.active || values.inactive) command.active = values.active === true;
    if (name === "provider add") {
      if (command.payout === undefined) throw new CommandLineError("provider add needs --payout ADDRESS (the provider's eERC account)");
      if (command.pricing === undefined)
        throw new CommandLineError("provider add needs a pricing: --price USDC, --free-calls N --price USDC, --free-pool or --tiers");
    } else if (command.pricing === undefined && command.payout === undefined && command.active === undefined) {
      throw new CommandLineError("provider update needs something to change: a pricing, --payout ADDRESS, --active or --inactive");
    }
  }
  if (name === "server authorise" || name === "server revoke") {
    if (positional === undefined || !isAddress(positional, { strict: false }))
      throw new CommandLineError(`"${positional ?? ""}" is not a server address (0x + 40 hex)`);
    command.target = getAddress(positional);
    if (values.providers !== undefined) {
      const providers = values.providers.split(",").map((n) => n.trim());
      const bad = providers.find((n) => !isValidNamespace(n));
      if (bad !== undefined) throw new CommandLineError(`--providers: "${bad}" is not a namespace (1 to 64 ASCII letters or digits)`);
      if (providers.length > 64) throw new CommandLineError("--providers takes at most 64 namespaces at a time");
      command.providers = [...new Set(providers)];
    }
    if (name === "server authorise") {
      const cap = (flag: "cap-batch" | "cap-period"): bigint => {
        const v = values[flag];
        if (v === undefined) return NO_CAP;
        const n = uintFlag(`--${flag}`, v, "a positive integer below 2^64");
        if (n === 0n || n > NO_CAP) throw new CommandLineError(`--${flag} must be a positive integer below 2^64`);
        return n;
      };
      command.caps = { perBatch: cap("cap-batch"), perPeriod: cap("cap-period") };
      if ((values["cap-batch"] !== undefined || values["cap-period"] !== undefined) && command.providers === undefined)
        throw new CommandLineError("--cap-batch and --cap-period need --providers (the providers they cap)");
    }
  }
  return command;
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

function closest(word: string, candidates: readonly string[]): string | undefined {
  const [best] = candidates.map((c) => [c, distance(word, c)] as const).sort((x, y) => x[1] - y[1]);
  return best && best[1] <= 2 ? best[0] : undefined;
}

/** An unknown option: another command's ("only used with"), a typo ("did you mean") or neither. */
function unknownOptionMessage(flag: string, name: CommandName | undefined): string {
  const bare = flag.replace(/^-+/, "").split("=")[0]!;
  const sources = name === undefined ? [] : SPECS[name].options.filter((o) => o === "api" || o === "rpc" || o === "agent");
  if (name !== undefined && (bare === "api" || bare === "rpc" || bare === "agent") && sources.length > 0) {
    return `${name} ${sources.length === 1 ? "needs" : "takes"} ${sources.map((o) => `--${o} URL`).join(" or ")}, not --${bare}`;
  }
  if (name !== undefined && bare in OPTIONS) {
    const users = COMMAND_NAMES.filter((c) => SPECS[c].options.includes(bare as OptionName));
    return `--${bare} is only used with ${users.join(", ")}`;
  }
  const mine = name === undefined ? [] : SPECS[name].options;
  const suggestion = closest(bare, mine);
  return suggestion ? `unknown option ${flag}: did you mean --${suggestion}?` : `unknown option ${flag}`;
}

export type Parsed = Command | { help: string };

/** Parses the arguments (after `npm run cli --`): a command to run, or help text to print. */
export function parseCommand(argv: string[]): Parsed {
  let result: Command | undefined;
  let help = "";
  const program = new Commander("npm run cli --")
    .usage("<command> [options]")
    .description("BackendShield's CLI for providers, auditors and operators. Amounts are decrypted here with your own key.")
    .helpOption("-h, --help", "this text")
    .addHelpText("after", ROOT_HELP_AFTER)
    .exitOverride()
    .configureOutput({ writeOut: (s) => (help += s), writeErr: () => {}, outputError: () => {} })
    .helpCommand(false);
  const groups = new Map<string, Commander>();
  for (const name of COMMAND_NAMES) {
    const spec = SPECS[name];
    const [group, sub] = name.split(" ") as [string, string | undefined];
    let parent = program;
    if (sub !== undefined) {
      let g = groups.get(group);
      if (!g) {
        g = program
          .command(group)
          .description(GROUPS[group] ?? group)
          .usage("<command> [options]")
          .helpCommand(false);
        groups.set(group, g);
      }
      parent = g;
    }
    const cmd = parent
      .command(sub ?? group)
      .description(spec.summary)
      .helpOption("-h, --help", "this command's options");
    if (spec.args) cmd.argument(spec.args);
    for (const option of spec.options) {
      const [flags, description] = OPTIONS[option];
      cmd.addOption(new Option(flags, description));
    }
    if (spec.details) cmd.addHelpText("after", `\n${spec.details}`);
    cmd.action((...args: unknown[]) => {
      const self = args.at(-1) as Commander;
      const opts = self.opts<Record<string, string | boolean>>();
      const values: Values = {};
      for (const o of spec.options) {
        const key = o.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
        if (opts[key] !== undefined) (values as Record<string, unknown>)[o] = opts[key];
      }
      result = toCommand(name, values, spec.args ? (args[0] as string) : undefined);
    });
    cmd.configureOutput({ writeOut: (s) => (help += s), writeErr: () => {}, outputError: () => {} });
  }
  try {
    program.parse(argv, { from: "user" });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return { help: help.trimEnd() };
    throw new CommandLineError(commanderMessage(e, argv));
  }
  if (!result) throw new CommandLineError(`missing command: ${[...new Set(COMMAND_NAMES.map((n) => n.split(" ")[0]))].join(", ")}`);
  return result;
}

/** Commander's error, reworded: balanced quotes, the next step named. */
function commanderMessage(e: CommanderError, argv: string[]): string {
  const name = commandNameIn(argv);
  const text = e.message.replace(/^error: /, "");
  if (e.code === "commander.unknownOption") {
    const flag = /'([^']+)'/.exec(text)?.[1] ?? "?";
    return unknownOptionMessage(flag, name);
  }
  if (e.code === "commander.unknownCommand") {
    const word = /'([^']+)'/.exec(text)?.[1] ?? "?";
    const group = name === undefined ? argv.find((a) => !a.startsWith("-")) : undefined;
    const top = [...new Set(COMMAND_NAMES.map((n) => n.split(" ")[0]!))];
    const subs = COMMAND_NAMES.filter((n) => n.startsWith(`${group} `)).map((n) => n.split(" ")[1]!);
    const candidates = group !== undefined && group !== word && subs.length > 0 ? subs : top;
    const guess = closest(word, candidates);
    return `unknown command "${word}": ${guess ? `did you mean ${guess}? ` : ""}expected ${candidates.join(", ")}`;
  }
  if (e.code === "commander.help") {
    const group = argv.find((a) => !a.startsWith("-"));
    const subs = COMMAND_NAMES.filter((n) => n.startsWith(`${group} `)).map((n) => n.split(" ")[1]!);
    if (group !== undefined && subs.length > 0) return `missing command: ${group} ${subs.join("|")}`;
    return `missing command: ${[...new Set(COMMAND_NAMES.map((n) => n.split(" ")[0]))].join(", ")}`;
  }
  if (e.code === "commander.missingArgument") {
    const arg = /'([^']+)'/.exec(text)?.[1] ?? "argument";
    return `${name ?? "the command"} needs <${arg}>`;
  }
  if (e.code === "commander.optionMissingArgument") {
    const flag =
      /'([^']+)'/
        .exec(text)?.[1]
        ?.split(" ")
        .find((w) => w.startsWith("--")) ?? "the option";
    return `${flag} needs a value`;
  }
  if (e.code === "commander.excessArguments") {
    const extra = text.split(": ").at(-1)?.replace(/\.$/, "");
    return `unexpected argument "${extra}"`;
  }
  return text;
}

/** The command named at the front of argv, if any (for error messages before an action ran). */
function commandNameIn(argv: string[]): CommandName | undefined {
  const words = argv.filter((a) => !a.startsWith("-"));
  for (const n of COMMAND_NAMES) {
    const parts = n.split(" ");
    if (parts.every((p, i) => words[i] === p)) return n;
  }
  return undefined;
}
