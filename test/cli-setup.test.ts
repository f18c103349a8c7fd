import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Address, getAddress } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProviderRegistryAbi } from "../abis/ProviderRegistryAbi.js";
import { RegistrarAbi } from "../abis/RegistrarAbi.js";
import { UsageLedgerAbi } from "../abis/UsageLedgerAbi.js";
import { freePort } from "../src/chain/anvil.js";
import { ANVIL_KEYS, LOCAL_ROLES } from "../src/chain/local.js";
import { PROJECT_ROOT } from "../src/eerc/artifacts.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { mintUsdc, newFundedAccount } from "../src/local/marketplace.js";
import { type LocalWorld, localWorld } from "../src/local/world.js";
import { PricingModel, perCall } from "../src/usage/pricing.js";
import { providerIdOf } from "../src/usage/registry.js";
import { type PayoutWorld, spawnAgent } from "./payout-fixtures.js";

// Every set-up step of the README's deployment path, as the CLI runs it against a real chain,
// indexer and agent: registration proofs, provider changes sent directly and relayed, server
// authorisation, payer funding, and doctor's checks, passing and failing.

const TSX = join(PROJECT_ROOT, "node_modules", ".bin", "tsx");
const OPERATOR_KEY = ANVIL_KEYS[LOCAL_ROLES.operator]!;

type Run = { code: number; stdout: string; stderr: string };

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = { ...process.env };
  for (const k of ["PRIVATE_KEY", "DEPLOYMENT_FILE", "NETWORK"]) delete base[k];
  return new Promise((resolve) =>
    execFile(TSX, ["src/cli/index.ts", ...args], { cwd: PROJECT_ROOT, env: { ...base, ...env }, timeout: 180_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr }),
    ),
  );
}

let w: LocalWorld;
let rpc: string[];
let agent: ReturnType<typeof spawnAgent> | undefined;
let agentUrl: string;

const read = <T>(address: Address, abi: readonly unknown[], functionName: string, args: readonly unknown[]) =>
  w.chain.publicClient.readContract({ address, abi, functionName, args } as never) as Promise<T>;

beforeAll(async () => {
  w = await localWorld({ providers: [{ namespace: "weather", pricing: perCall(1000n) }], fundMicro: 1_000_000n, indexer: true });
  rpc = ["--rpc", w.rpcUrl, "--manifest", w.manifestPath];
  const port = await freePort();
  agentUrl = `http://127.0.0.1:${port}`;
  agent = spawnAgent(w as PayoutWorld, [], { PAYOUT_PORT: String(port), PAYOUT_INTERVAL_S: "0" });
  for (let i = 0; i < 200; i++) {
    if (
      await fetch(`${agentUrl}/health`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    await new Promise((r) => setTimeout(r, 250));
  }
}, 300_000);

afterAll(async () => {
  agent?.child.kill("SIGTERM");
  await agent?.done;
  await w?.close();
});

describe("cli set-up commands on anvil", () => {
  it("register makes a registration proof and registers the wallet; a second run says it already is", async () => {
    const provider = await newFundedAccount(w.chain);
    const first = await cli(["register", ...rpc], { PRIVATE_KEY: provider.privateKey });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(
      new RegExp(`^registered ${provider.address} in the eERC \\(Registrar 0x[0-9a-fA-F]{40}, tx 0x[0-9a-f]{64}`),
    );
    expect(await read<boolean>(w.manifest.contracts.registrar, RegistrarAbi, "isUserRegistered", [provider.address])).toBe(true);
    const again = await cli(["register", ...rpc, "--json"], { PRIVATE_KEY: provider.privateKey });
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ account: provider.address, registered: true, txHash: null });
    expect(again.stdout + again.stderr).not.toContain(provider.privateKey.slice(2));
  });

  it("provider add and update, sent directly and relayed by the API, change the registry", async () => {
    const payout = await newFundedAccount(w.chain);
    const unregistered = await cli(["provider", "add", "forecast", ...rpc, "--payout", payout.address, "--price", "0.0015"], {
      PRIVATE_KEY: OPERATOR_KEY,
    });
    expect(unregistered.code).toBe(1);
    expect(unregistered.stderr.trim()).toBe(
      `error: registerProvider refused: the payout account ${payout.address} has no eERC registration: the provider runs "npm run cli -- register --rpc URL" with its wallet key first`,
    );
    expect((await cli(["register", ...rpc], { PRIVATE_KEY: payout.privateKey })).code).toBe(0);

    const add = await cli(["provider", "add", "forecast", ...rpc, "--payout", payout.address, "--price", "0.0015"], {
      PRIVATE_KEY: OPERATOR_KEY,
    });
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toContain(`registered provider forecast (${providerIdOf("forecast")})`);
    const id = providerIdOf("forecast");
    type Provider = { payoutAccount: Address; active: boolean; pricing: { model: number; pricePerCallMicro: bigint; tiers: unknown[] } };
    let p = await read<Provider>(w.manifest.contracts.providerRegistry, ProviderRegistryAbi, "getProvider", [id]);
    expect(p.payoutAccount).toBe(getAddress(payout.address));
    expect(p.pricing).toMatchObject({ model: PricingModel.PerCall, pricePerCallMicro: 1500n });

    const twice = await cli(["provider", "add", "forecast", ...rpc, "--payout", payout.address, "--price", "0.0015"], {
      PRIVATE_KEY: OPERATOR_KEY,
    });
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain('already registered: change it with "npm run cli -- provider update"');

    const relayed = await cli(
      ["provider", "update", "forecast", ...rpc, "--api", w.indexer!.url, "--free-calls", "100", "--price", "0.002"],
      {
        PRIVATE_KEY: OPERATOR_KEY,
      },
    );
    expect(relayed.code, relayed.stderr).toBe(0);
    expect(relayed.stdout).toContain("relayed by the API");
    expect(relayed.stdout).toContain("the new pricing applies from the next pricing period");
    p = await read<Provider>(w.manifest.contracts.providerRegistry, ProviderRegistryAbi, "getProvider", [id]);
    expect(p.pricing.model).toBe(PricingModel.Tiered);
    expect(p.pricing.tiers).toEqual([
      { upToCalls: 100n, priceMicro: 0n },
      { upToCalls: 2n ** 64n - 1n, priceMicro: 2000n },
    ]);

    const inactive = await cli(["provider", "update", "forecast", ...rpc, "--inactive", "--json"], { PRIVATE_KEY: OPERATOR_KEY });
    expect(inactive.code, inactive.stderr).toBe(0);
    expect(JSON.parse(inactive.stdout).changes).toEqual([{ change: "active", txHash: expect.stringMatching(/^0x[0-9a-f]{64}$/) }]);
    p = await read<Provider>(w.manifest.contracts.providerRegistry, ProviderRegistryAbi, "getProvider", [id]);
    expect(p.active).toBe(false);

    const notOwner = await cli(["provider", "update", "forecast", ...rpc, "--active"], { PRIVATE_KEY: payout.privateKey });
    expect(notOwner.code).toBe(1);
    expect(notOwner.stderr).toContain(`${payout.address} is not the contract's owner: run this with the owner's wallet key`);
  });

  it("server authorise and revoke set who may commit usage", async () => {
    const server = await newFundedAccount(w.chain);
    const authorised = () => read<boolean>(w.manifest.contracts.usageLedger, UsageLedgerAbi, "isAuthorisedServer", [server.address]);
    const on = await cli(["server", "authorise", server.address, ...rpc], { PRIVATE_KEY: OPERATOR_KEY });
    expect(on.code, on.stderr).toBe(0);
    expect(on.stdout).toMatch(new RegExp(`^authorised server ${server.address} on UsageLedger`));
    expect(await authorised()).toBe(true);
    const off = await cli(["server", "revoke", server.address, ...rpc], { PRIVATE_KEY: OPERATOR_KEY });
    expect(off.code, off.stderr).toBe(0);
    expect(await authorised()).toBe(false);
  });

  it("server authorise --providers binds the server to the providers it meters, with caps; revoke --providers unbinds them", async () => {
    const server = await newFundedAccount(w.chain);
    const binding = (ns: string) =>
      read<[boolean, bigint, bigint]>(w.manifest.contracts.usageLedger, UsageLedgerAbi, "bindingOf", [server.address, providerIdOf(ns)]);
    const bad = await cli(["server", "authorise", server.address, ...rpc, "--cap-batch", "5"], { PRIVATE_KEY: OPERATOR_KEY });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--cap-batch and --cap-period need --providers");
    const zero = await cli(["server", "authorise", server.address, ...rpc, "--providers", "weather", "--cap-batch", "0"], {
      PRIVATE_KEY: OPERATOR_KEY,
    });
    expect(zero.code).toBe(2);
    const on = await cli(
      [
        "server",
        "authorise",
        server.address,
        ...rpc,
        "--providers",
        "weather,news",
        "--cap-batch",
        "100",
        "--cap-period",
        "5000",
        "--json",
      ],
      { PRIVATE_KEY: OPERATOR_KEY },
    );
    expect(on.code, on.stderr).toBe(0);
    expect(JSON.parse(on.stdout)).toMatchObject({
      server: server.address,
      authorised: true,
      providers: [
        { namespace: "weather", bound: true },
        { namespace: "news", bound: true },
      ],
      maxCallsPerBatch: "100",
      maxCallsPerPeriod: "5000",
    });
    expect(await binding("weather")).toEqual([true, 100n, 5000n]);
    expect(await binding("news")).toEqual([true, 100n, 5000n]);
    const off = await cli(["server", "revoke", server.address, ...rpc, "--providers", "news"], { PRIVATE_KEY: OPERATOR_KEY });
    expect(off.code, off.stderr).toBe(0);
    expect(off.stdout).toMatch(new RegExp(`^unbound server ${server.address} from news on UsageLedger`));
    expect(await binding("news")).toEqual([false, 0n, 0n]);
    expect(await binding("weather")).toEqual([true, 100n, 5000n]);
    expect(await read<boolean>(w.manifest.contracts.usageLedger, UsageLedgerAbi, "isAuthorisedServer", [server.address])).toBe(true);
  });

  it("payer fund deposits the wallet's USDC into its encrypted balance, and names the balance when it is short", async () => {
    const short = await cli(["payer", "fund", ...rpc, "--amount", "1000000"], { PRIVATE_KEY: OPERATOR_KEY });
    expect(short.code).toBe(1);
    expect(short.stderr.trim()).toMatch(
      /^error: the wallet 0x[0-9a-fA-F]{40} holds \d+\.\d{6} USDC of 0x[0-9a-fA-F]{40}, less than the 1000000\.000000 USDC asked: send USDC to it first$/,
    );
    const before = await w.operator.balance(w.tokenId);
    await mintUsdc(w.chain, w.manifest, w.owner, w.owner.address, 2_500_000n);
    const fund = await cli(["payer", "fund", ...rpc, "--amount", "2.5", "--json"], { PRIVATE_KEY: OPERATOR_KEY });
    expect(fund.code, fund.stderr).toBe(0);
    expect(JSON.parse(fund.stdout)).toMatchObject({ amountMicro: "2500000", balanceMicro: (before + 2_500_000n).toString() });
    expect(await w.operator.balance(w.tokenId)).toBe(before + 2_500_000n);
  });

  it("settlement show reads the record; settlement set records a change from the next period; reconcile refuses a flag that disagrees", async () => {
    const show = await cli(["settlement", "show", ...rpc]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain("in force: 1000 bps, monthly periods, since genesis (record 0)");
    const set = await cli(["settlement", "set", ...rpc, "--fee-bps", "800", "--json"], { PRIVATE_KEY: OPERATOR_KEY });
    expect(set.code, set.stderr).toBe(0);
    const recorded = JSON.parse(set.stdout) as { feeBps: number; periodUnit: string; startsAt: string };
    expect(recorded).toMatchObject({ feeBps: 800, periodUnit: "month" });
    const { timestamp } = await w.chain.publicClient.getBlock();
    const next = new Date(Number(timestamp) * 1000);
    expect(Number(recorded.startsAt)).toBe(Date.UTC(next.getUTCFullYear(), next.getUTCMonth() + 1, 1) / 1000);
    const after = await cli(["settlement", "show", ...rpc, "--json"]);
    const history = JSON.parse(after.stdout) as { inForce: { feeBps: number }; schedule: { feeBps: number }[] };
    expect(history.inForce.feeBps).toBe(1000);
    expect(history.schedule.map((t) => t.feeBps)).toEqual([1000, 800]);
    const notOwner = await cli(["settlement", "set", ...rpc, "--fee-bps", "1"], { PRIVATE_KEY: ANVIL_KEYS[3]! });
    expect(notOwner.code).toBe(1);
    expect(notOwner.stderr).toMatch(/OwnableUnauthorizedAccount/);

    await new IndexerClient(w.indexer!.url).waitForBlock(await w.chain.publicClient.getBlockNumber());
    const auditor = ANVIL_KEYS[LOCAL_ROLES.auditor]!;
    const reconcile = ["reconcile", "--api", w.indexer!.url, "--operator", w.owner.address];
    const typo = await cli([...reconcile, "--fee-bps", "100"], { PRIVATE_KEY: auditor });
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(
      /^error: --fee-bps 100 but the recorded fee is 1000 bps \(record in force: 1000 bps, monthly periods, since genesis/,
    );
    const plain = await cli(reconcile, { PRIVATE_KEY: auditor });
    expect(plain.code, plain.stderr).toBe(0);
  });

  it("doctor passes on the running world, one line per check", async () => {
    const run = await cli(["doctor", ...rpc, "--api", w.indexer!.url, "--agent", agentUrl], { PRIVATE_KEY: OPERATOR_KEY });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const lines = run.stdout.split("\n");
    for (const check of ["manifest", "chain", "contracts", "auditor", "circuits", "operator", "indexer", "agent", "payer"]) {
      expect(
        lines.some((l) => new RegExp(`^ok\\s+${check}\\s`).test(l)),
        `${check}:\n${run.stdout}`,
      ).toBe(true);
    }
    expect(run.stdout).toContain("every check passed");
  });

  it("doctor names each failure and its fix, and exits 1", async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    const run = await cli(["doctor", ...rpc, "--api", down, "--agent", down, "--json"], { PRIVATE_KEY: OPERATOR_KEY });
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as { ok: boolean; checks: { check: string; status: string; fix?: string }[] };
    expect(report.ok).toBe(false);
    const byName = new Map(report.checks.map((c) => [c.check, c]));
    expect(byName.get("indexer")).toMatchObject({ status: "fail", fix: "start it with npm run indexer, or fix --api" });
    expect(byName.get("agent")).toMatchObject({ status: "fail", fix: "start it with npm run agent, or fix --agent" });
    expect(byName.get("circuits")?.status).toBe("ok");

    const stale = join(w.dir, "stale.json");
    const other = (await newFundedAccount(w.chain)).address;
    writeFileSync(stale, JSON.stringify({ ...w.manifest, contracts: { ...w.manifest.contracts, registrar: other, encryptedERC: other } }));
    const staleRun = await cli(["doctor", "--rpc", w.rpcUrl, "--manifest", stale]);
    expect(staleRun.code).toBe(1);
    expect(staleRun.stdout).toMatch(/^FAIL\s+contracts\s+no code at EncryptedERC 0x.*fix: the manifest is from another deployment/m);
  });

  it("a manifest from an earlier chain is named as stale, not as a contract returning no data", async () => {
    const stale = join(w.dir, "earlier.json");
    const other = (await newFundedAccount(w.chain)).address;
    writeFileSync(stale, JSON.stringify({ ...w.manifest, contracts: { ...w.manifest.contracts, registrar: other, encryptedERC: other } }));
    const run = await cli(["history", "--rpc", w.rpcUrl, "--manifest", stale], { PRIVATE_KEY: OPERATOR_KEY });
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe(
      `error: the manifest ${stale} names EncryptedERC ${other}, but chain 31337 at ${w.rpcUrl} has no contract there: it was written for an earlier deployment; pass --manifest with this chain's, or deploy with npm run deploy`,
    );
    expect(run.stderr).not.toContain("returned no data");
  });
});
