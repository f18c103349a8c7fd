/**
 * The owner apart from the operator, on anvil with the indexer, the agent as a process and real
 * proofs. Deploy offers ownership of the ProviderRegistry, the UsageLedger and the EncryptedERC to
 * an account that never registers in the eERC (a multisig's stand-in), which accepts it and
 * authorises a server; the operator (the deployer, registered) stays the ledger's operator. The
 * server's meter commits usage, the API counts the provider's pending earnings and the agent pays
 * them. An agent or an API given another account's key refuses it, naming the setting. Last,
 * `npm run deploy` with OWNER_ADDRESS and OPERATOR_ADDRESS deploys a second set on the same chain.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Address, getAddress, type PrivateKeyAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, vi } from "vitest";
import { EncryptedERCAbi } from "../abis/EncryptedERCAbi.js";
import { ProviderRegistryAbi } from "../abis/ProviderRegistryAbi.js";
import { RegistrarAbi } from "../abis/RegistrarAbi.js";
import { UsageLedgerAbi } from "../abis/UsageLedgerAbi.js";
import { payoutFields } from "../src/api/payouts.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { type DeployResult, deploy } from "../src/deployment/deploy.js";
import type { DeploymentManifest } from "../src/deployment/manifest.js";
import { decryptPCT } from "../src/eerc/pct.js";
import { decryptHistory } from "../src/history/decrypt.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { authoriseServer, newFundedAccount } from "../src/local/marketplace.js";
import { localWorld } from "../src/local/world.js";
import { createBatchSubmitter, createMeter, type Meter, perCall, staticPricing } from "../src/meter/index.js";
import { decryptLinesFor, providerIdOf } from "../src/usage/index.js";
import { revertChecker } from "./contract-helpers.js";
import { FEE_BPS, type PayoutWorld, spawnAgent } from "./payout-fixtures.js";
import { runScript } from "./run-script.js";
import { story } from "./story.js";

/** The multisig's stand-in: one of anvil's accounts, which the world never registers in the eERC. */
const safe = privateKeyToAccount(ANVIL_KEYS[5]);
const PRICE = 1_000n;

let w: PayoutWorld;
let pendingOwnership: DeployResult["pendingOwnership"];
let server: PrivateKeyAccount;
let meter: Meter;
const spoolDir = mkdtempSync(join(tmpdir(), "owner-operator-"));

const expectRevert = revertChecker(() => w.chain.publicClient);
const isRegistered = (account: Address) =>
  w.chain.publicClient.readContract({
    address: w.manifest.contracts.registrar,
    abi: RegistrarAbi,
    functionName: "isUserRegistered",
    args: [account],
  });

beforeAll(async () => {
  const world = await localWorld({
    providers: [{ namespace: "weather", pricing: perCall(PRICE) }],
    fundMicro: 1_000_000n,
    indexer: true,
    settlement: { feeBps: FEE_BPS, periodUnit: "month" },
    deploy: async (args) => {
      const { pendingOwnership: pending, ...manifest } = await deploy({
        ...args,
        network: "anvil-owner-operator",
        deployer: privateKeyToAccount(ANVIL_KEYS[0]),
        auditor: privateKeyToAccount(ANVIL_KEYS[9]),
        owner: safe.address,
        write: false,
      });
      pendingOwnership = pending;
      return manifest;
    },
  });
  w = { ...world, indexer: world.indexer! };
});

afterAll(async () => {
  await meter?.close();
  await w?.close();
  rmSync(spoolDir, { recursive: true, force: true });
});

describe("an owner without an eERC key, the operator apart", () => {
  const step = story();

  step("deploy offers ownership to the owner, which accepts it and administers; the operator stays the deployer", async () => {
    const { providerRegistry, usageLedger, encryptedERC } = w.manifest.contracts;
    const owned = [
      { name: "ProviderRegistry", address: providerRegistry, abi: ProviderRegistryAbi },
      { name: "UsageLedger", address: usageLedger, abi: UsageLedgerAbi },
      { name: "EncryptedERC", address: encryptedERC, abi: EncryptedERCAbi },
    ] as const;
    expect(pendingOwnership).toEqual({ owner: safe.address, contracts: owned.map(({ name, address }) => ({ name, address })) });
    const read = (address: Address, abi: (typeof owned)[number]["abi"], functionName: "owner" | "pendingOwner") =>
      w.chain.publicClient.readContract({ address, abi, functionName } as never) as Promise<Address>;
    for (const c of owned) {
      // The world was set up by the deployer, which owns each contract until the owner accepts.
      expect([await read(c.address, c.abi, "owner"), await read(c.address, c.abi, "pendingOwner")]).toEqual([
        w.owner.address,
        safe.address,
      ]);
      const hash = await w.chain
        .walletFor(safe)
        .writeContract({ address: c.address, abi: c.abi, functionName: "acceptOwnership" } as never);
      expect((await w.chain.publicClient.waitForTransactionReceipt({ hash })).status).toBe("success");
      expect(await read(c.address, c.abi, "owner")).toBe(safe.address);
    }
    const operator = await w.chain.publicClient.readContract({ address: usageLedger, abi: UsageLedgerAbi, functionName: "operator" });
    expect(operator).toBe(w.operator.address);
    expect([await isRegistered(safe.address), await isRegistered(operator)]).toEqual([false, true]);

    // The owner, not the operator, authorises and binds a metering server now.
    server = await newFundedAccount(w.chain);
    await expectRevert(w.owner, usageLedger, UsageLedgerAbi, "setServer", [server.address, true], "OwnableUnauthorizedAccount", [
      w.owner.address,
    ]);
    await authoriseServer(w.chain, w.manifest, safe, server.address, ["weather"]);
    expect(
      await w.chain.publicClient.readContract({
        address: usageLedger,
        abi: UsageLedgerAbi,
        functionName: "isAuthorisedServer",
        args: [server.address],
      }),
    ).toBe(true);
  });

  step("the server's meter encrypts the operator copy to the operator's key; the API counts the provider's earnings", async () => {
    const { providerRegistry: registry, usageLedger: ledger, registrar, encryptedERC: eerc } = w.manifest.contracts;
    meter = createMeter({
      spoolDir,
      serverAddress: server.address,
      pricing: staticPricing({ weather: perCall(PRICE) }),
      batch: { maxAgeMs: 600_000 },
      submitter: createBatchSubmitter({
        serverAccount: server,
        publicClient: w.chain.publicClient,
        ledger,
        registry,
        registrar,
        eerc,
        mode: { kind: "direct" },
      }),
    });
    await meter.recover();
    let tool!: (args: unknown, extra: unknown) => Promise<unknown>;
    const mcpServer = { registerTool: (_name: string, _config: unknown, cb: typeof tool) => void (tool = cb) };
    meter.registerTool(mcpServer as never, { namespace: "weather", route: "getForecast", description: "forecast" }, async () => ({
      content: [{ type: "text" as const, text: "sunny" }],
    }));
    for (let i = 0; i < 3; i++) await tool({}, {});
    await meter.flush();

    const [committed] = await w.chain.publicClient.getContractEvents({
      address: ledger,
      abi: UsageLedgerAbi,
      eventName: "UsageCommitted",
      args: { server: server.address },
      fromBlock: 0n,
      strict: true,
    });
    expect(decryptLinesFor(committed!.args.encryptedLines, w.operator.exportPrivateKey(), "operator")).toEqual([
      { providerId: providerIdOf("weather"), calls: 3n, billableCalls: 3n, amountMicro: 3n * PRICE, revenueMicro: 0n },
    ]);

    // 3 calls × 1,000 micro-USDC − the 10% fee, read by the provider from the API with its own key.
    const { account, client } = w.payoutAccounts.get("weather")!;
    const indexer = new IndexerClient(w.indexer.url);
    await indexer.waitForBlock(await w.chain.publicClient.getBlockNumber({ cacheTime: 0 }));
    expect(decryptHistory(await indexer.earnings(account.address), client.exportPrivateKey()).pending?.amountMicro).toBe(2_700n);
  });

  step("the operator's agent settles and pays the provider", async () => {
    const run = await spawnAgent(w, ["--once"], { PAYOUT_FUND_FROM_POOL: "0" }).done;
    expect(run.code, run.output).toBe(0);
    const { client } = w.payoutAccounts.get("weather")!;
    expect(await client.balance(w.tokenId)).toBe(2_700n);
  });

  step("an agent given another account's key refuses to start, naming OPERATOR_PRIVATE_KEY", async () => {
    const provider = w.payoutAccounts.get("weather")!.account;
    const run = await spawnAgent(w, ["--once"], { PAYOUT_FUND_FROM_POOL: "0", OPERATOR_PRIVATE_KEY: provider.privateKey }).done;
    expect(run.code).toBe(2);
    expect(run.output).toContain(
      `INVALID_CONFIG: OPERATOR_PRIVATE_KEY is not the eERC key of the UsageLedger's operator ${w.operator.address} ` +
        `(ledger ${getAddress(w.manifest.contracts.usageLedger)})`,
    );
  });

  step("an API given another eERC key serves no pending amount and logs why, naming OPERATOR_EERC_KEY", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const { account, client } = w.payoutAccounts.get("weather")!;
      const fieldsWith = (sk: bigint) =>
        payoutFields({
          env: { OPERATOR_EERC_KEY: `0x${sk.toString(16)}`, PAYER_ADDRESSES: w.operator.address, PORT: new URL(w.indexer.url).port },
          chainId: w.manifest.chainId,
          rpcUrl: w.rpcUrl,
          contracts: w.manifest.contracts,
          graphqlFetch: ((input: string, init?: RequestInit) =>
            fetch(new URL(new URL(input).pathname, w.indexer.url), init)) as typeof fetch,
        });
      const wrong = await fieldsWith(client.exportPrivateKey()).pending(account.address, client.publicKey);
      expect(wrong).toEqual({ pending: null, pendingUnavailable: "the payout ledger could not be read; see the API's log" });
      const logged = errors.mock.calls.map((c) => String(c[0]));
      expect(logged).toContain(
        `payout fields off: INVALID_CONFIG: OPERATOR_EERC_KEY is not the eERC key of the UsageLedger's operator ${w.operator.address} ` +
          `(ledger ${getAddress(w.manifest.contracts.usageLedger)}): the operator copy of every usage line is encrypted to that account's ` +
          "registered key and this key reads none of them; set OPERATOR_EERC_KEY to the operator's key, or have the ledger's owner " +
          "name this key's account as the operator (setOperator)",
      );
      // The operator's own eERC key (and no wallet key) reads the ledger: everything was paid.
      const right = await fieldsWith(w.operator.exportPrivateKey()).pending(account.address, client.publicKey);
      expect(right.pending).not.toBeNull();
      expect(decryptPCT(right.pending!.pct.map(BigInt), client.exportPrivateKey())).toBe(0n);
    } finally {
      errors.mockRestore();
    }
  });

  step("npm run deploy with OWNER_ADDRESS and OPERATOR_ADDRESS names the operator and prints what the owner has to do", async () => {
    const operator = privateKeyToAccount(ANVIL_KEYS[6]).address;
    const deploymentFile = join(spoolDir, "deployment.json");
    const run = await runScript(
      "scripts/deploy.ts",
      [],
      {
        RPC_URL: w.rpcUrl,
        DEPLOYMENT_FILE: deploymentFile,
        DEPLOYER_PRIVATE_KEY: ANVIL_KEYS[0],
        OWNER_ADDRESS: safe.address,
        OPERATOR_ADDRESS: operator,
      },
      600_000,
    );
    expect(run.code, run.stderr).toBe(0);
    const { contracts } = JSON.parse(readFileSync(deploymentFile, "utf8")) as DeploymentManifest;
    expect(run.stdout).toContain(
      `the UsageLedger's operator is ${operator}: the operator copy of every usage line is encrypted to its registered eERC key ` +
        "(not registered yet: it registers before the first usage batch, npm run cli -- register)",
    );
    expect(run.stdout).toContain(
      `TO DO: ownership is not transferred yet. The owner ${safe.address} must call acceptOwnership() on each of:\n` +
        `  ProviderRegistry ${contracts.providerRegistry}\n  UsageLedger ${contracts.usageLedger}\n  EncryptedERC ${contracts.encryptedERC}\n`,
    );
    const read = (address: Address, functionName: "operator" | "owner" | "pendingOwner") =>
      w.chain.publicClient.readContract({ address, abi: UsageLedgerAbi, functionName });
    expect(await read(contracts.usageLedger, "operator")).toBe(operator);
    for (const address of [contracts.providerRegistry, contracts.usageLedger, contracts.encryptedERC]) {
      expect([await read(address, "owner"), await read(address, "pendingOwner")]).toEqual([w.owner.address, safe.address]);
    }
  });
});
