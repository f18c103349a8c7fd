import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestUSDCAbi } from "../abis/TestUSDCAbi.js";
import { type Anvil, freePort, startAnvil } from "../src/chain/anvil.js";
import { type ChainClients, connectChain } from "../src/chain/clients.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { main } from "../src/cli/index.js";
import { deploy } from "../src/deployment/deploy.js";
import { type DeploymentManifest, writeManifest } from "../src/deployment/manifest.js";
import { PROJECT_ROOT } from "../src/eerc/artifacts.js";
import { EercClient } from "../src/eerc/client.js";
import { deriveKeyFromWallet, publicKeyOf } from "../src/eerc/keys.js";
import { encryptPCT } from "../src/eerc/pct.js";
import { Prover } from "../src/eerc/prover.js";
import { buildAudit, buildEarnings } from "./history-fixtures.js";

const TSX = join(PROJECT_ROOT, "node_modules", ".bin", "tsx");
const accounts = ANVIL_KEYS.map((k) => privateKeyToAccount(k));
const [, , PROVIDER, COMPETITOR, , STRANGER, , , , AUDITOR] = ANVIL_KEYS;

type Run = { code: number; stdout: string; stderr: string };

const baseEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env };
  for (const k of ["PRIVATE_KEY", "DEPLOYMENT_FILE", "NETWORK"]) delete env[k];
  return env;
};

/** Runs the real CLI as a child process; never throws on a non-zero exit. */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      TSX,
      ["src/cli/index.ts", ...args],
      { cwd: PROJECT_ROOT, env: { ...baseEnv(), ...env }, timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The CLI's `main` in this process, with the output a process would print. */
async function cliInProcess(args: string[]): Promise<Run> {
  const out = { stdout: "", stderr: "" };
  const code = await main(args, {
    stdout: (t) => (out.stdout += `${t}\n`),
    stderr: (t) => (out.stderr += `${t}\n`),
    env: baseEnv(),
  });
  return { code, ...out };
}

const tmp = mkdtempSync(join(tmpdir(), "cli-test-"));
function secretFile(name: string, content: string): string {
  const path = join(tmp, name);
  writeFileSync(path, `${content}\n`);
  chmodSync(path, 0o600);
  return path;
}

/** Neither the wallet key nor the eERC key may appear anywhere in the output. */
function expectNoSecrets(run: Run, ...secrets: (string | bigint)[]): void {
  const out = (run.stdout + run.stderr).toLowerCase();
  for (const s of secrets) {
    const forms = typeof s === "bigint" ? [s.toString(10), s.toString(16)] : [s.toLowerCase().replace(/^0x/, "")];
    for (const f of forms) expect(out).not.toContain(f);
  }
}

const eercKey = (walletKey: `0x${string}`) => deriveKeyFromWallet(privateKeyToAccount(walletKey));

describe("cli: usage, keys and unreachable sources", () => {
  // Every contract field a manifest may carry points at some address; nothing answers there.
  const someAddress = accounts[4]!.address;
  const fakeManifest = {
    network: "test",
    chainId: 31337,
    startBlock: 0,
    decimals: 6,
    isConverter: true,
    owner: someAddress,
    auditor: someAddress,
    contracts: {
      registrar: someAddress,
      encryptedERC: someAddress,
      token: someAddress,
      providerRegistry: someAddress,
      usageLedger: someAddress,
      verifiers: { registration: someAddress, transfer: someAddress, withdraw: someAddress, mint: someAddress, burn: someAddress },
    },
    deployedAt: "2026-01-01T00:00:00.000Z",
  };

  it("usage errors exit 2 with one clear line", async () => {
    const cases: [string[], RegExp][] = [
      [[], /missing command/],
      [["balance", "--api", "http://127.0.0.1:1"], /unknown command "balance"/],
      [["history"], /exactly one of --api URL or --rpc URL/],
      [["history", "--api", "http://a", "--rpc", "http://b"], /exactly one of/],
      [["history", "--api", "http://a", "--frobnicate"], /^error: unknown option --frobnicate \(see --help\)\n$/],
      [["history", "--api", "http://a", "--tokn-id", "1"], /unknown option --tokn-id: did you mean --token-id\?/],
      [["withdraw", "--rpc", "http://a", "--amount", "-1"], /--amount must be more than 0/],
      [["audit", "--api", "http://a", "--period", "week"], /--period must be day or month/],
      [["history", "--api", "http://a", "--period", "day"], /--period is only used with audit/],
      [["history", "--api", "http://a", "--token-id", "one"], /--token-id must be a non-negative integer/],
      [["history", "--api", "ftp://a"], /--api must be an http\(s\) URL/],
      [["history", "--api", "http://a", "--manifest", "m.json"], /--manifest is only used with --rpc/],
      [["history", "--api", "http://a", "--eerc-key-file", "k"], /--eerc-key-file needs --address/],
      [["history", "--api", "http://a", "--address", accounts[2]!.address], /--address is only used with --eerc-key-file/],
      [["history", "--api", "http://a", "--eerc-key-file", "k", "--address", "0x12"], /--address is not an address/],
      [["history", "--api", "http://a"], /no key: set PRIVATE_KEY/],
      [["history", "--api", "http://a", "--records", "r.jsonl"], /--records is only used with usage/],
      [["usage", "--rpc", "http://a", "--period", "day"], /--period is only used with audit/],
      [["withdraw", "--api", "http://a", "--amount", "1"], /withdraw needs --rpc URL, not --api/],
      [["withdraw", "--rpc", "http://a"], /withdraw needs --amount USDC/],
      [["history", "--api", "http://a", "--amount", "1"], /--amount is only used with withdraw/],
      [["reconcile", "--rpc", "http://a"], /reconcile needs --api URL, not --rpc/],
      [["reconcile", "--api", "http://a", "--fee-bps", "20000"], /--fee-bps must be an integer from 0 to 10000/],
      [["reconcile", "--api", "http://a", "--pricing-period", "week"], /--pricing-period must be month or day/],
      [["reconcile", "--api", "http://a"], /reconcile needs --operator ADDRESS/],
      [["reconcile", "--api", "http://a", "--operator", "0x12"], /--operator: "0x12" is not an address/],
      [
        ["reconcile", "--api", "http://a", "--operator", accounts[2]!.address, "--pending-cap", "0"],
        /--pending-cap must be a positive integer/,
      ],
      [
        ["reconcile", "--api", "http://a", "--operator", accounts[2]!.address, "--pending-cap", "3x"],
        /--pending-cap must be a positive integer/,
      ],
      [["history", "--api", "http://a", "--pending-cap", "3"], /--pending-cap is only used with reconcile/],
      [["distribute", "--api", "http://a"], /^error: distribute needs --agent URL, not --api/],
      [["history", "--agent", "http://a"], /history takes --api URL or --rpc URL, not --agent/],
      [["provider"], /^error: missing command: provider add\|update/],
      [["provider", "ad", "weather"], /unknown command "ad": did you mean add\?/],
      [["provider", "add", "weather", "--rpc", "http://a", "--price", "0.001"], /provider add needs --payout ADDRESS/],
      [["provider", "add", "wea-ther", "--rpc", "http://a"], /"wea-ther" is not a namespace: 1 to 64 ASCII letters or digits/],
      [["provider", "add", "weather", "--api", "http://a"], /provider add needs --rpc URL \(add --api URL to have the API relay/],
      [["provider", "add", "weather", "--rpc", "http://a", "--payout", accounts[2]!.address], /provider add needs a pricing: --price USDC/],
      [["provider", "add", "weather", "--rpc", "http://a", "--price", "1", "--free-pool"], /give one pricing/],
      [["provider", "add", "weather", "--rpc", "http://a", "--tiers", "10:0,x"], /--tiers: "x" is not upToCalls:USDC/],
      [["provider", "update", "weather", "--rpc", "http://a"], /provider update needs something to change/],
      [["provider", "update", "weather", "--rpc", "http://a", "--active", "--inactive"], /give --active or --inactive, not both/],
      [["server", "authorise", "0x12", "--rpc", "http://a"], /"0x12" is not a server address/],
      [["server", "revoke", "--rpc", "http://a"], /server revoke needs <address>/],
      [
        ["server", "authorise", accounts[2]!.address, "--rpc", "http://a", "--providers", "weather,we-ather"],
        /--providers: "we-ather" is not a namespace/,
      ],
      [
        ["server", "authorise", accounts[2]!.address, "--rpc", "http://a", "--cap-period", "5"],
        /--cap-batch and --cap-period need --providers/,
      ],
      [
        ["server", "authorise", accounts[2]!.address, "--rpc", "http://a", "--providers", "weather", "--cap-batch", "0"],
        /--cap-batch must be a positive integer below 2\^64/,
      ],
      [
        [
          "server",
          "authorise",
          accounts[2]!.address,
          "--rpc",
          "http://a",
          "--providers",
          "weather",
          "--cap-period",
          "18446744073709551616",
        ],
        /--cap-period must be a positive integer below 2\^64/,
      ],
      [["payer", "fund", "--rpc", "http://a"], /payer fund needs --amount USDC/],
      [["payer", "fund", "--rpc", "http://a", "--amount", "0"], /--amount must be more than 0, got 0: the USDC to deposit/],
      [["settlement", "set", "--rpc", "http://a"], /settlement set needs --fee-bps N and\/or --pricing-period/],
      [["settlement", "set", "--rpc", "http://a", "--fee-bps", "500", "--from", "tomorrow"], /--from must be a UTC day as YYYY-MM-DD/],
      [["doctor"], /doctor needs --rpc URL/],
      [["register", "--api", "http://a"], /register needs --rpc URL, not --api/],
    ];
    // Every case through the CLI's main; a few also as the process a user starts (a process costs
    // about 2 s of CPU, and the exit code and the one line come from the same main).
    const inProcess = await Promise.all(cases.map(([args]) => cliInProcess(args)));
    const spawned = [0, 5, cases.length - 1];
    const processes = await Promise.all(spawned.map((i) => cli(cases[i]![0])));
    const runs = [...inProcess.map((run, i) => ({ run, i })), ...processes.map((run, k) => ({ run, i: spawned[k]! }))];
    for (const { run, i } of runs) {
      expect(run.code, cases[i]![0].join(" ")).toBe(2);
      expect(run.stderr).toMatch(cases[i]![1]);
      expect(run.stderr.trim().split("\n")).toHaveLength(1);
      expect(run.stdout).toBe("");
    }
  });

  it("--help prints the usage and exits 0, also through npm run cli", async () => {
    const run = await cli(["--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Usage: npm run cli -- <command>/);
    const npm = await new Promise<Run>((resolve) =>
      execFile("npm", ["run", "--silent", "cli", "--", "--help"], { cwd: PROJECT_ROOT, env: baseEnv() }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr }),
      ),
    );
    expect(npm.code).toBe(0);
    expect(npm.stdout).toContain("Exit codes: 0 ok, 1 runtime error, 2 usage error");
  });

  it("every command has its own --help, naming its options, and exits 0", async () => {
    const commands = ["history", "audit", "usage", "withdraw", "reconcile", "distribute", "register", "provider add", "provider update"];
    commands.push("server authorise", "server revoke", "payer fund", "settlement show", "settlement set", "doctor");
    // Through the CLI's main: the test above runs --help as a process.
    const runs = await Promise.all(commands.map((c) => cliInProcess([...c.split(" "), "--help"])));
    runs.forEach((run, i) => {
      expect(run.code, commands[i]).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`^Usage: npm run cli -- ${commands[i]} \\[options\\]`));
      expect(run.stdout).toContain("-h, --help");
    });
    expect(runs[7]!.stdout).toContain("--payout <address>");
    expect(runs[14]!.stdout).toContain("payer balance against what is owed next");
  });

  it("an invalid key exits 2 without echoing it", async () => {
    const short = "0xdeadbeefdeadbeefdeadbeef";
    const words = "correct horse battery staple correct horse battery staple 00000000";
    const outOfRange = "30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001"; // > l
    const runs = await Promise.all([
      cli(["history", "--api", "http://127.0.0.1:9"], { PRIVATE_KEY: short }),
      cli(["history", "--api", "http://127.0.0.1:9", "--key-file", secretFile("words.key", words)]),
      cli([
        "audit",
        "--api",
        "http://127.0.0.1:9",
        "--eerc-key-file",
        secretFile("range.key", outOfRange),
        "--address",
        accounts[2]!.address,
      ]),
      cli(["audit", "--api", "http://127.0.0.1:9", "--eerc-key-file", secretFile("zero.key", "0x0"), "--address", accounts[2]!.address]),
      cli(["history", "--api", "http://127.0.0.1:9", "--key-file", join(tmp, "missing.key")]),
    ]);
    expect(runs.map((r) => r.code)).toEqual([2, 2, 2, 2, 2]);
    expect(runs[0]!.stderr).toMatch(/^error: invalid key: PRIVATE_KEY is not a 32-byte hex private key$/m);
    expect(runs[1]!.stderr).toMatch(/invalid key: the --key-file content is not a 32-byte hex private key/);
    expect(runs[2]!.stderr).toMatch(/invalid key: .*must be in \[1, l\)/);
    expect(runs[3]!.stderr).toMatch(/invalid key/);
    expect(runs[4]!.stderr).toMatch(/cannot read --key-file .*ENOENT/);
    expectNoSecrets(runs[0]!, "deadbeefdeadbeefdeadbeef");
    expectNoSecrets(runs[1]!, "horse battery");
    expectNoSecrets(runs[2]!, outOfRange);
  });

  it("usage --records with a file that cannot be read exits 2; a malformed one exits 1", async () => {
    const bad = join(tmp, "bad-records.json");
    writeFileSync(bad, '[{"eventId":"x"}]');
    const [missing, malformed] = await Promise.all([
      cli(["usage", "--api", "http://127.0.0.1:9", "--records", join(tmp, "no-such-records.jsonl")], { PRIVATE_KEY: PROVIDER! }),
      cli(["usage", "--api", "http://127.0.0.1:9", "--records", bad], { PRIVATE_KEY: PROVIDER! }),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toMatch(/^error: cannot read --records .*no-such-records\.jsonl: ENOENT \(see --help\)$/);
    expect(malformed.code).toBe(1);
    expect(malformed.stderr.trim()).toMatch(/^error: .*bad-records\.json\[0\]: priceMicro must be a non-negative integer/);
  });

  it("an unreachable API or RPC exits 1 with one line", async () => {
    const port = await freePort();
    const manifest = join(tmp, "fake-manifest.json");
    writeFileSync(manifest, JSON.stringify(fakeManifest));
    const [api, rpc] = await Promise.all([
      cli(["history", "--api", `http://127.0.0.1:${port}`], { PRIVATE_KEY: PROVIDER! }),
      cli(["audit", "--rpc", `http://127.0.0.1:${port}`, "--manifest", manifest], { PRIVATE_KEY: AUDITOR! }),
    ]);
    expect(api.code).toBe(1);
    expect(api.stderr.trim()).toMatch(
      new RegExp(
        `^error: http://127.0.0.1:${port}/accounts/0x.*/earnings is unreachable \\(connection refused\\): check that the service is running at that address$`,
      ),
    );
    expect(rpc.code).toBe(1);
    expect(rpc.stderr.trim()).toBe(
      `error: RPC at http://127.0.0.1:${port} is unreachable (connection refused): check that the node is running and the URL is right`,
    );
    expectNoSecrets(api, PROVIDER!);
    expectNoSecrets(rpc, AUDITOR!);
  });
});

describe("cli: API mode against a local server", () => {
  let server: Server;
  let api: string;
  const providerAddress = accounts[2]!.address;
  const auditorAddress = accounts[9]!.address;
  let providerSk: bigint;
  let auditorSk: bigint;
  let competitorSk: bigint;

  beforeAll(async () => {
    [providerSk, auditorSk, competitorSk] = await Promise.all([eercKey(PROVIDER!), eercKey(AUDITOR!), eercKey(COMPETITOR!)]);
    const earnings = buildEarnings(
      providerAddress,
      publicKeyOf(providerSk),
      [
        { tokenId: 1n, kind: "transfer_in", amount: 1_234_567n },
        { tokenId: 1n, kind: "transfer_in", amount: 1n },
        { tokenId: 1n, kind: "withdraw", amount: 500_000n },
      ],
      [{ tokenId: 1n, tokenAddress: "0x5425890298aed601595a70AB815c96711a31Bc65" }],
    ).json;
    earnings.pending = { pct: encryptPCT(4_200n, publicKeyOf(providerSk)).pct.map(String), throughBlock: "123" };
    const competitorEarnings = buildEarnings(accounts[3]!.address, publicKeyOf(competitorSk), [], []).json;
    const audit = buildAudit(auditorAddress, publicKeyOf(auditorSk), [
      { period: "2026-11-24", tokenId: 1n, kind: "transfer", amount: 1_234_567n, to: publicKeyOf(auditorSk), auditorAddress },
      { period: "2026-11-24", tokenId: 1n, kind: "transfer", amount: 1n, to: publicKeyOf(auditorSk), auditorAddress },
      { period: "2026-11-24", tokenId: 1n, kind: "withdraw", amount: 500_000n, to: publicKeyOf(auditorSk), auditorAddress },
    ]);
    server = createServer((req, res) => {
      const url = new URL(req.url!, "http://x");
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (url.pathname === `/accounts/${providerAddress}/earnings`) return json(200, earnings);
      if (url.pathname === `/accounts/${accounts[3]!.address}/earnings`) return json(200, competitorEarnings);
      if (url.pathname === "/audit/totals") return json(200, audit);
      json(404, { error: { field: "providerId", message: "no registered account" } });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    api = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it("history decrypts the balance history and incoming transfers (table and JSON)", async () => {
    const [table, json] = await Promise.all([
      cli(["history", "--api", api], { PRIVATE_KEY: PROVIDER! }),
      cli(["history", "--api", api, "--json", "--token-id", "1"], { PRIVATE_KEY: PROVIDER! }),
    ]);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain("balance: 0.734568 USDC");
    expect(table.stdout).toContain("pending 0.004200 USDC owed through block 123, paid in the next payout cycle");
    expect(JSON.parse(json.stdout).pending.amountMicro).toBe("4200");
    expect(table.stdout).toContain("incoming transfers: 2, total 1.234568 USDC");
    expect(table.stdout).toMatch(/withdraw\s+-0\.500000\s+0\.734568/);
    expect(json.code).toBe(0);
    const h = JSON.parse(json.stdout);
    expect(h.tokens[0].rows.map((r: { balanceMicro: string }) => r.balanceMicro)).toEqual(["1234567", "1234568", "734568"]);
    expect(h.tokens[0].receivedTotalMicro).toBe("1234568");
    expectNoSecrets(table, PROVIDER!, providerSk);
    expectNoSecrets(json, PROVIDER!, providerSk);
  });

  it("audit totals with the auditor's key; a competitor's key decrypts none; an unknown account exits 1", async () => {
    const [auditor, competitor, stranger] = await Promise.all([
      cli(["audit", "--api", api, "--json"], { PRIVATE_KEY: AUDITOR! }),
      cli(["audit", "--api", api, "--json"], { PRIVATE_KEY: COMPETITOR! }),
      cli(["audit", "--api", api], { PRIVATE_KEY: STRANGER! }),
    ]);
    expect(auditor.code).toBe(0);
    const a = JSON.parse(auditor.stdout);
    expect(a.keyIsCurrentAuditor).toBe(true);
    expect(a.tokens[0].byKind.transfer).toEqual({ entries: 2, decrypted: 2, undecryptable: 0, amountMicro: "1234568" });
    expect(a.tokens[0].byKind.withdraw.amountMicro).toBe("500000");
    expect(competitor.code).toBe(0);
    const c = JSON.parse(competitor.stdout);
    expect(c.keyIsCurrentAuditor).toBe(false);
    expect(c.undecryptable).toHaveLength(3);
    expect(c.tokens[0]).toMatchObject({ entries: 3, decrypted: 0, undecryptable: 3, amountMicro: "0" });
    expect(stranger.code).toBe(1);
    expect(stranger.stderr.trim()).toMatch(
      /^error: account 0x.* has no eERC registration known to the API: register it first with "npm run cli -- register --rpc URL"/,
    );
  });

  it("a key that is not the account's registered key exits 1 with a key-mismatch error", async () => {
    const run = await cli([
      "history",
      "--api",
      api,
      "--eerc-key-file",
      secretFile("api-wrong.key", competitorSk.toString(16)),
      "--address",
      providerAddress,
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toMatch(/^error: key mismatch: derived key for 0x.* does not match the registered public key/);
    expectNoSecrets(run, competitorSk);
  });
});

describe("cli: RPC mode against anvil with real proofs", () => {
  let anvil: Anvil;
  let chain: ChainClients;
  const prover = new Prover();
  let manifestFile: string;
  let rpc: string;
  let provider: EercClient;
  let competitor: EercClient;
  let tokenId: bigint;

  beforeAll(async () => {
    anvil = await startAnvil();
    rpc = anvil.rpcUrl;
    chain = await connectChain(rpc);
    const manifest = await deploy({
      rpcUrl: rpc,
      network: "anvil-test",
      deployer: accounts[0]!,
      auditor: accounts[9]!,
      prover,
      write: false,
    });
    manifestFile = join(tmp, "anvil-manifest.json");
    writeManifest(manifest, manifestFile);
    const contracts = { encryptedERC: manifest.contracts.encryptedERC, registrar: manifest.contracts.registrar };
    const connect = (i: number) =>
      EercClient.connect({ publicClient: chain.publicClient, wallet: chain.walletFor(accounts[i]!), contracts, prover });
    const [payer, p, c] = await Promise.all([connect(1), connect(2), connect(3)]);
    provider = p;
    competitor = c;
    await payer.register();
    await provider.register();
    await competitor.register();
    const hash = await chain.walletFor(accounts[0]!).writeContract({
      address: manifest.contracts.token,
      abi: TestUSDCAbi,
      functionName: "mint",
      args: [payer.address, 5_000_000n],
    } as never);
    await chain.publicClient.waitForTransactionReceipt({ hash });
    await payer.deposit({ token: manifest.contracts.token, amount: 5_000_000n });
    tokenId = await payer.tokenId(manifest.contracts.token);
    await payer.transfer({ to: provider.address, amount: 1_234_567n, tokenId });
    await payer.transfer({ to: provider.address, amount: 1n, tokenId });
    await provider.withdraw({ amount: 500_000n, tokenId });
    expect(await provider.balance(tokenId)).toBe(734_568n);
  });

  afterAll(async () => {
    await prover.close();
    await anvil?.stop();
  });

  it("history --rpc prints the provider's exact balance and each payout", async () => {
    const [table, json, viaEercKey] = await Promise.all([
      cli(["history", "--rpc", rpc, "--manifest", manifestFile], { PRIVATE_KEY: PROVIDER! }),
      cli(["history", "--rpc", rpc, "--manifest", manifestFile, "--json", "--token-id", String(tokenId)], { PRIVATE_KEY: PROVIDER! }),
      cli([
        "history",
        "--rpc",
        rpc,
        "--manifest",
        manifestFile,
        "--json",
        "--eerc-key-file",
        secretFile("provider.key", provider.exportPrivateKey().toString(16)),
        "--address",
        provider.address,
      ]),
    ]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain(`account ${provider.address}`);
    expect(table.stdout).toContain("balance: 0.734568 USDC");
    expect(table.stdout).toContain("incoming transfers: 2, total 1.234568 USDC");
    expect(table.stdout).toMatch(/1\.234567/);
    expect(table.stdout).toMatch(/0\.000001/);
    expect(json.code, json.stderr).toBe(0);
    const h = JSON.parse(json.stdout);
    expect(h.tokens).toHaveLength(1);
    expect(h.tokens[0]).toMatchObject({ tokenId: "1", balanceMicro: "734568", receivedTotalMicro: "1234568" });
    expect(h.tokens[0].received.map((r: { amountMicro: string }) => r.amountMicro)).toEqual(["1234567", "1"]);
    expect(h.unresolved).toEqual([]);
    expect(viaEercKey.code, viaEercKey.stderr).toBe(0);
    expect(JSON.parse(viaEercKey.stdout).tokens[0].balanceMicro).toBe("734568");
    for (const run of [table, json, viaEercKey]) expectNoSecrets(run, PROVIDER!, provider.exportPrivateKey());
  });

  it("audit --rpc totals equal the transferred and withdrawn amounts", async () => {
    const [json, table] = await Promise.all([
      cli(["audit", "--rpc", rpc, "--manifest", manifestFile, "--json", "--period", "month"], { PRIVATE_KEY: AUDITOR! }),
      cli(["audit", "--rpc", rpc, "--manifest", manifestFile], { PRIVATE_KEY: AUDITOR! }),
    ]);
    expect(json.code, json.stderr).toBe(0);
    const a = JSON.parse(json.stdout);
    expect(a.keyIsCurrentAuditor).toBe(true);
    expect(a.auditor).toBe(accounts[9]!.address);
    expect(a.periods).toHaveLength(1);
    expect(a.periods[0].period).toMatch(/^\d{4}-\d{2}$/);
    expect(a.tokens).toHaveLength(1);
    expect(a.tokens[0].tokenId).toBe("1");
    expect(a.tokens[0].byKind.transfer).toEqual({ entries: 2, decrypted: 2, undecryptable: 0, amountMicro: "1234568" });
    expect(a.tokens[0].byKind.withdraw).toEqual({ entries: 1, decrypted: 1, undecryptable: 0, amountMicro: "500000" });
    expect(a.undecryptable).toEqual([]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain("(the contract's current auditor key)");
    expect(table.stdout).toMatch(/transfer\s+2\s+0\s+1\.234568/);
    expect(table.stdout).toMatch(/withdraw\s+1\s+0\s+0\.500000/);
    expectNoSecrets(json, AUDITOR!);
  });

  it("a competitor's key decrypts none of the audit entries (all undecryptable)", async () => {
    const run = await cli(["audit", "--rpc", rpc, "--manifest", manifestFile, "--json"], { PRIVATE_KEY: COMPETITOR! });
    expect(run.code, run.stderr).toBe(0);
    const a = JSON.parse(run.stdout);
    expect(a.keyIsCurrentAuditor).toBe(false);
    expect(a.tokens[0]).toMatchObject({ entries: 3, decrypted: 0, undecryptable: 3, amountMicro: "0" });
    expect(a.undecryptable).toHaveLength(3);
  });

  it("a wrong key exits 1 with a key-mismatch error; an unregistered account and a wrong chain exit 1", async () => {
    const wrong = secretFile("wrong.key", competitor.exportPrivateKey().toString(16));
    const otherChain = join(tmp, "other-chain.json");
    writeManifest({ ...(JSON.parse(readFileSync(manifestFile, "utf8")) as DeploymentManifest), chainId: 43113 }, otherChain);
    const [history, audit, stranger, chainMismatch] = await Promise.all([
      cli(["history", "--rpc", rpc, "--manifest", manifestFile, "--eerc-key-file", wrong, "--address", provider.address]),
      cli(["audit", "--rpc", rpc, "--manifest", manifestFile, "--eerc-key-file", wrong, "--address", accounts[9]!.address]),
      cli(["history", "--rpc", rpc, "--manifest", manifestFile], { PRIVATE_KEY: STRANGER! }),
      cli(["history", "--rpc", rpc, "--manifest", otherChain], { PRIVATE_KEY: PROVIDER! }),
    ]);
    expect(history.code).toBe(1);
    expect(history.stderr.trim()).toMatch(
      new RegExp(`^error: key mismatch: derived key for ${provider.address} does not match the registered public key`),
    );
    expect(audit.code).toBe(1);
    expect(audit.stderr).toMatch(/key mismatch/);
    expect(stranger.code).toBe(1);
    expect(stranger.stderr.trim()).toMatch(
      new RegExp(
        `^error: account ${accounts[5]!.address} has no eERC registration in the Registrar at 0x.*: register it first with "npm run cli -- register`,
      ),
    );
    expect(chainMismatch.code).toBe(1);
    expect(chainMismatch.stderr.trim()).toBe("error: the deployment manifest is for chain 43113 but the RPC serves chain 31337");
    for (const run of [history, audit]) expectNoSecrets(run, competitor.exportPrivateKey());
  });
});
