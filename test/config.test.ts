import { readFileSync } from "node:fs";
import { join } from "node:path";
import { getAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { poolFundingKey } from "../src/config/agent.js";
import {
  ANVIL_KEYS,
  agentConfig,
  CONFIG_VARIABLES,
  ConfigError,
  deploySettings,
  LOCAL_ROLES,
  payoutViewConfig,
  relayerKey,
} from "../src/config/index.js";
import { checkLedgerOperator, checkRecordedSettlement } from "../src/config/operator.js";
import { PROJECT_ROOT } from "../src/eerc/artifacts.js";
import { publicKeyOf } from "../src/eerc/keys.js";
import { fixedSchedule } from "../src/revenue/schedule.js";

const FUJI = 43113;
const LOCAL = 31337;
const KEY = `0x${"11".repeat(32)}` as const;
const operatorAddress = () => "0x000000000000000000000000000000000000dEaD" as const;

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("no error thrown");
}

describe("agent settings", () => {
  it("on anvil needs nothing set: the operator is anvil's account #0 and every default applies", () => {
    expect(agentConfig({}, LOCAL)).toEqual({
      operatorKey: ANVIL_KEYS[LOCAL_ROLES.operator],
      pastPayers: [],
      asserted: {},
      log: { format: undefined, level: undefined },
      rpcUrl: "http://127.0.0.1:8545",
      indexerUrl: "http://127.0.0.1:42069",
      payerKeys: [ANVIL_KEYS[LOCAL_ROLES.operator]],
      fundFromPool: true,
      poolKey: ANVIL_KEYS[LOCAL_ROLES.revenuePool],
      confirmations: 0,
      depth: 3,
      everyProvider: true,
      intervalS: 0,
      port: 42070,
      agentName: "payout",
      requestsFile: "data/payout-requests-31337.jsonl",
      checkpointFile: "data/payout-checkpoint-31337.bin",
      provingKeyChecksFile: "data/proving-key-checks.json",
      corsOrigins: [],
      fault: undefined,
    });
  });

  it("reads AGENT_CORS_ORIGIN as a list of origins, and refuses what is not an http(s) URL", () => {
    expect(agentConfig({ AGENT_CORS_ORIGIN: "http://127.0.0.1:42069/, https://dash.example/app/" }, LOCAL).corsOrigins).toEqual([
      "http://127.0.0.1:42069",
      "https://dash.example",
    ]);
    expect(configError(() => agentConfig({ AGENT_CORS_ORIGIN: "*" }, LOCAL)).message).toMatch(
      /^AGENT_CORS_ORIGIN item 1 must be an http\(s\) URL/,
    );
  });

  it("on any other chain never falls back to a well-known key, and waits a confirmation", () => {
    expect(configError(() => agentConfig({}, FUJI)).message).toBe("OPERATOR_PRIVATE_KEY must be set on chain 43113");
    expect(agentConfig({ OPERATOR_PRIVATE_KEY: KEY }, FUJI)).toMatchObject({ operatorKey: KEY, payerKeys: [KEY], confirmations: 1 });
    expect(agentConfig({ OPERATOR_PRIVATE_KEY: KEY }, FUJI).poolKey).toBeUndefined();
  });

  it("funds the payers from the revenue pool with the pool's own key, or the payer's when the pool is a payer; PAYOUT_FUND_FROM_POOL=0 turns it off", () => {
    const pool = privateKeyToAccount(ANVIL_KEYS[LOCAL_ROLES.revenuePool]).address;
    const operator = privateKeyToAccount(KEY).address;
    // On anvil the pool is account #7, whose key is the default.
    expect(poolFundingKey(agentConfig({}, LOCAL), pool)).toBe(ANVIL_KEYS[LOCAL_ROLES.revenuePool]);
    // The pool is the operator, the only payer: its key, and no pool key is needed.
    expect(poolFundingKey(agentConfig({ OPERATOR_PRIVATE_KEY: KEY }, FUJI), operator)).toBe(KEY);
    // A separate pool wallet on another chain needs its key, which must be the pool's.
    const missing = configError(() => poolFundingKey(agentConfig({ OPERATOR_PRIVATE_KEY: KEY }, FUJI), pool));
    expect(missing.field).toBe("REVENUE_POOL_PRIVATE_KEY");
    expect(missing.message).toMatch(/must be set to fund the payers from the revenue pool .* or set PAYOUT_FUND_FROM_POOL=0/);
    const other = `0x${"22".repeat(32)}` as const;
    const wrong = configError(() =>
      poolFundingKey(agentConfig({ OPERATOR_PRIVATE_KEY: KEY, REVENUE_POOL_PRIVATE_KEY: other }, FUJI), pool),
    );
    expect(wrong.field).toBe("REVENUE_POOL_PRIVATE_KEY");
    expect(wrong.message).toContain(`not of the deployment's revenue pool ${pool}`);
    expect(wrong.message).not.toContain(other);
    const right = agentConfig({ OPERATOR_PRIVATE_KEY: KEY, REVENUE_POOL_PRIVATE_KEY: ANVIL_KEYS[LOCAL_ROLES.revenuePool] }, FUJI);
    expect(poolFundingKey(right, pool)).toBe(ANVIL_KEYS[LOCAL_ROLES.revenuePool]);
    // Without a pool in the manifest there is nothing to fund from.
    expect(configError(() => poolFundingKey(agentConfig({}, LOCAL), undefined)).field).toBe("PAYOUT_FUND_FROM_POOL");
    // Off: nothing is needed, not even a key.
    const off = agentConfig({ OPERATOR_PRIVATE_KEY: KEY, PAYOUT_FUND_FROM_POOL: "0" }, FUJI);
    expect(off.fundFromPool).toBe(false);
    expect(poolFundingKey(off, pool)).toBeNull();
    expect(configError(() => agentConfig({ PAYOUT_FUND_FROM_POOL: "yes" }, LOCAL)).message).toBe(
      'PAYOUT_FUND_FROM_POOL must be 0 or 1, got "yes"',
    );
    expect(configError(() => agentConfig({ REVENUE_POOL_PRIVATE_KEY: "0x12" }, LOCAL)).message).toBe(
      "REVENUE_POOL_PRIVATE_KEY must be a 0x-prefixed 32-byte hex private key",
    );
  });

  it("names the variable and its bounds, treats an empty variable as unset, and never echoes a key", () => {
    const fee = configError(() => agentConfig({ PLATFORM_FEE_BPS: "10001" }, LOCAL));
    expect(fee.field).toBe("PLATFORM_FEE_BPS");
    expect(fee.message).toBe('PLATFORM_FEE_BPS must be an integer from 0 to 10000, got "10001"');
    expect(configError(() => agentConfig({ PAYOUT_PIPELINE_DEPTH: "0" }, LOCAL)).message).toContain("from 1 to 64");
    expect(configError(() => agentConfig({ PRICING_PERIOD: "week" }, LOCAL)).message).toBe(
      'PRICING_PERIOD must be one of "month", "day", got "week"',
    );
    expect(agentConfig({ PLATFORM_FEE_BPS: "", INDEXER_URL: "http://idx:42069/" }, LOCAL)).toMatchObject({
      asserted: {},
      indexerUrl: "http://idx:42069",
    });
    const secret = "0xnotakeybutsecret";
    const bad = configError(() => agentConfig({ PAYER_PRIVATE_KEYS: `${KEY}, ${secret}` }, LOCAL));
    expect(bad.message).toBe("PAYER_PRIVATE_KEYS item 2 must be a 0x-prefixed 32-byte hex private key");
    expect(bad.message).not.toContain("secret");
    expect(configError(() => agentConfig({ PAYOUT_FAULT: "later" }, LOCAL)).field).toBe("PAYOUT_FAULT");
    expect(configError(() => agentConfig({ PAYOUT_FAULT: "explode@1" }, LOCAL)).message).toMatch(
      /must be one of before_prove, .* got "explode"/,
    );
    expect(agentConfig({ PAYOUT_FAULT: "after_send@2", PAYOUT_EVERY_PROVIDER: "0" }, LOCAL)).toMatchObject({
      fault: { step: "after_send", seq: 2 },
      everyProvider: false,
    });
    expect(agentConfig({ PAYOUT_FAULT: "after_pool_transfer@1" }, LOCAL).fault).toEqual({ step: "after_pool_transfer", seq: 1 });
  });
});

describe("settlement settings given to the agent or the API", () => {
  const inForce = fixedSchedule({ feeBps: 1000, periodUnit: "month" })[0]!;

  it("are only checked against the record in force on chain, and refused naming the variable and the recorded value", () => {
    const asserted = agentConfig({ PLATFORM_FEE_BPS: "250", PRICING_PERIOD: "day" }, LOCAL).asserted;
    expect(asserted).toEqual({ feeBps: 250, periodUnit: "day" });
    const fee = configError(() => checkRecordedSettlement(asserted, inForce));
    expect(fee.field).toBe("PLATFORM_FEE_BPS");
    expect(fee.message).toBe(
      "PLATFORM_FEE_BPS is 250 but the ProviderRegistry records 1000 (1000 bps, monthly periods, since genesis (record 0)): " +
        "the settlement settings are read from the chain; unset PLATFORM_FEE_BPS, or record a change (setSettlement)",
    );
    const period = configError(() => checkRecordedSettlement({ feeBps: 1000, periodUnit: "day" }, inForce));
    expect(period.field).toBe("PRICING_PERIOD");
    expect(period.message).toMatch(/^PRICING_PERIOD is day but the ProviderRegistry records month /);
    expect(() => checkRecordedSettlement({ feeBps: 1000, periodUnit: "month" }, inForce)).not.toThrow();
    expect(() => checkRecordedSettlement({}, inForce)).not.toThrow();
  });

  it("are what a deployment records, 1000 bps by month unless set", () => {
    expect(deploySettings({}).settlement).toEqual({ feeBps: 1000, periodUnit: "month" });
    expect(deploySettings({ PLATFORM_FEE_BPS: "250", PRICING_PERIOD: "day" }).settlement).toEqual({ feeBps: 250, periodUnit: "day" });
    expect(configError(() => deploySettings({ PLATFORM_FEE_BPS: "10001" })).field).toBe("PLATFORM_FEE_BPS");
  });
});

describe("API settings", () => {
  it("share the operator's variables with the agent: payers default to the operator, past payers are added", () => {
    const past = "0x00000000000000000000000000000000000000aa";
    expect(payoutViewConfig({ PAST_PAYER_ADDRESSES: past, PLATFORM_FEE_BPS: "250" }, LOCAL, operatorAddress)).toEqual({
      operator: { walletKey: ANVIL_KEYS[0] },
      payers: [operatorAddress(), getAddress(past)],
      asserted: { feeBps: 250 },
    });
  });

  it("read with the operator's eERC key alone, no wallet key at all, with the payers named", () => {
    const payer = "0x00000000000000000000000000000000000000bb";
    const eercKey = "0x0123456789abcdef";
    expect(payoutViewConfig({ OPERATOR_EERC_KEY: eercKey, PAYER_ADDRESSES: payer }, FUJI, operatorAddress)).toEqual({
      operator: { eercKey: 0x0123456789abcdefn },
      payers: [getAddress(payer)],
      asserted: {},
    });
    // Even on anvil, where a wallet key would be at hand, the eERC key is what the API reads with.
    expect(payoutViewConfig({ OPERATOR_EERC_KEY: eercKey, PAYER_ADDRESSES: payer }, LOCAL, operatorAddress)).not.toHaveProperty(
      "operator.walletKey",
    );
    expect(configError(() => payoutViewConfig({ OPERATOR_EERC_KEY: eercKey }, FUJI, operatorAddress)).field).toBe("PAYER_ADDRESSES");
    const bad = configError(() => payoutViewConfig({ OPERATOR_EERC_KEY: "0xsecretbutbad" }, FUJI, operatorAddress));
    expect(bad.field).toBe("OPERATOR_EERC_KEY");
    expect(bad.message).not.toContain("secretbutbad");
  });

  it("turn the payout fields off without the operator's key, but refuse a malformed one", () => {
    expect(payoutViewConfig({}, FUJI, operatorAddress)).toEqual({
      disabled: "OPERATOR_EERC_KEY is not set: pending amounts and cycle totals need the operator's eERC key on chain 43113",
    });
    expect(configError(() => payoutViewConfig({ OPERATOR_PRIVATE_KEY: "0x12" }, FUJI, operatorAddress)).field).toBe("OPERATOR_PRIVATE_KEY");
  });

  it("a malformed relayer key turns the write routes off without stopping the read side, and is never echoed", () => {
    const env = { RELAYER_PRIVATE_KEY: "0xsecretbutmalformed" };
    expect(payoutViewConfig(env, LOCAL, operatorAddress)).toMatchObject({ operator: { walletKey: ANVIL_KEYS[0] } });
    const off = relayerKey(env, LOCAL);
    expect(off).toEqual({ enabled: false, reason: "RELAYER_PRIVATE_KEY must be a 0x-prefixed 32-byte hex private key" });
  });

  it("the relayer uses anvil's account #8 only on anvil", () => {
    expect(relayerKey({}, LOCAL)).toEqual({ enabled: true, key: ANVIL_KEYS[LOCAL_ROLES.relayer], source: "anvil" });
    expect(relayerKey({}, FUJI).enabled).toBe(false);
  });
});

describe("the operator's key against the UsageLedger's operator", () => {
  const ledger = getAddress("0x00000000000000000000000000000000000000c1");
  const operator = getAddress("0x00000000000000000000000000000000000000c2");
  const registered = publicKeyOf(7n);

  it("passes the key the operator registered, and refuses another naming the setting and the operator", () => {
    expect(() => checkLedgerOperator("OPERATOR_EERC_KEY", publicKeyOf(7n), { ledger, operator, publicKey: registered })).not.toThrow();
    const other = configError(() => checkLedgerOperator("OPERATOR_EERC_KEY", publicKeyOf(8n), { ledger, operator, publicKey: registered }));
    expect(other.field).toBe("OPERATOR_EERC_KEY");
    expect(other.message).toBe(
      `OPERATOR_EERC_KEY is not the eERC key of the UsageLedger's operator ${operator} (ledger ${ledger}): the operator copy of every ` +
        "usage line is encrypted to that account's registered key and this key reads none of them; set OPERATOR_EERC_KEY to the " +
        "operator's key, or have the ledger's owner name this key's account as the operator (setOperator)",
    );
  });

  it("refuses an operator without an eERC registration: no line can be read", () => {
    const e = configError(() => checkLedgerOperator("OPERATOR_PRIVATE_KEY", registered, { ledger, operator, publicKey: null }));
    expect(e.field).toBe("OPERATOR_PRIVATE_KEY");
    expect(e.message.startsWith(`the UsageLedger's operator ${operator} (ledger ${ledger}) has no eERC registration`)).toBe(true);
  });
});

describe("deploy settings", () => {
  it("default to anvil's owner and auditor on the anvil network only", () => {
    expect(deploySettings({})).toMatchObject({ network: "anvil", deployerKey: ANVIL_KEYS[0], auditorKey: ANVIL_KEYS[9] });
    expect(configError(() => deploySettings({ NETWORK: "fuji" })).message).toBe("DEPLOYER_PRIVATE_KEY must be set on network fuji");
  });

  it("leave ownership and the ledger's operator with the deployer unless OWNER_ADDRESS or OPERATOR_ADDRESS name another", () => {
    expect(deploySettings({})).toMatchObject({ owner: undefined, operator: undefined });
    const safe = "0x00000000000000000000000000000000000005af";
    const operator = "0x00000000000000000000000000000000000000a1";
    expect(deploySettings({ OWNER_ADDRESS: safe, OPERATOR_ADDRESS: operator })).toMatchObject({
      owner: getAddress(safe),
      operator: getAddress(operator),
    });
    const zero = "0x0000000000000000000000000000000000000000";
    expect(configError(() => deploySettings({ OWNER_ADDRESS: zero })).message).toBe("OWNER_ADDRESS must not be the zero address");
    expect(configError(() => deploySettings({ OPERATOR_ADDRESS: zero })).field).toBe("OPERATOR_ADDRESS");
    expect(configError(() => deploySettings({ OWNER_ADDRESS: "0xsafe" })).field).toBe("OWNER_ADDRESS");
  });

  it("attach to an existing eERC only with its registrar and start block", () => {
    const eerc = "0x00000000000000000000000000000000000000e1";
    expect(configError(() => deploySettings({ EERC_ADDRESS: eerc })).field).toBe("REGISTRAR_ADDRESS");
    const registrar = "0x00000000000000000000000000000000000000e2";
    expect(configError(() => deploySettings({ EERC_ADDRESS: eerc, REGISTRAR_ADDRESS: registrar })).field).toBe("START_BLOCK");
    expect(deploySettings({ EERC_ADDRESS: eerc, REGISTRAR_ADDRESS: registrar, START_BLOCK: "12" }).eerc).toEqual({
      encryptedERC: getAddress(eerc),
      registrar: getAddress(registrar),
      startBlock: 12,
    });
  });
});

describe("several agents' settings", () => {
  const PAYER = `0x${"22".repeat(32)}` as const;
  const URL = "postgres://agent@db.internal:5432/payouts";

  it("share cycles only with AGENT_DATABASE_URL: named by their first payer, claiming 4 × payers × depth by default", () => {
    expect(agentConfig({}, LOCAL).coordination).toBeUndefined();
    expect(
      agentConfig({ AGENT_DATABASE_URL: URL, PAYER_PRIVATE_KEYS: `${PAYER},${KEY}`, PAYOUT_PIPELINE_DEPTH: "2" }, LOCAL).coordination,
    ).toEqual({
      url: URL,
      agentId: privateKeyToAccount(PAYER).address,
      claimSize: 16,
    });
    expect(agentConfig({ AGENT_DATABASE_URL: URL, AGENT_ID: "eu-1", AGENT_CLAIM_SIZE: "5" }, LOCAL).coordination).toEqual({
      url: URL,
      agentId: "eu-1",
      claimSize: 5,
    });
  });

  it("refuses a URL that is not Postgres' without echoing it, and the agent settings that need one", () => {
    const bad = configError(() => agentConfig({ AGENT_DATABASE_URL: "mysql://user:secret@db/payouts" }, LOCAL));
    expect(bad.field).toBe("AGENT_DATABASE_URL");
    expect(bad.message).not.toContain("secret");
    expect(configError(() => agentConfig({ AGENT_ID: "eu-1" }, LOCAL)).message).toBe(
      "AGENT_ID is only read with AGENT_DATABASE_URL (several agents)",
    );
  });

  it("crash tests can stop an agent while it plans", () => {
    expect(agentConfig({ PAYOUT_FAULT: "before_plan@1" }, LOCAL).fault).toEqual({ step: "before_plan", seq: 1 });
  });
});

describe("the README's configuration table", () => {
  const readme = readFileSync(join(PROJECT_ROOT, "README.md"), "utf8");
  const table = readme.slice(readme.indexOf("| variable | default | meaning |"));
  const rows = table.slice(0, table.indexOf("\n\n")).split("\n").slice(2);
  const documented = new Set(rows.flatMap((row) => [...(row.split("|")[1] ?? "").matchAll(/`([A-Z0-9_<>a-zA-Z]+)`/g)].map((m) => m[1]!)));

  it("lists every variable a process reads", () => {
    const read = new Set(Object.values(CONFIG_VARIABLES).flat());
    expect([...read].filter((v) => !documented.has(v))).toEqual([]);
  });

  it("lists no variable that nothing reads through these schemas, except the benchmarks' and Ponder's command line", () => {
    const read = new Set<string>(Object.values(CONFIG_VARIABLES).flat());
    const elsewhere = (v: string) =>
      v.startsWith("BENCH_") || ["PONDER_RPC_URL_<chainId>", "DATABASE_SCHEMA", "DATABASE_VIEWS_SCHEMA", "INDEXER_HOST"].includes(v);
    expect([...documented].filter((v) => !read.has(v) && !elsewhere(v))).toEqual([]);
  });
});
