import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { getAddress } from "viem";
import { describe, expect, it } from "vitest";
import { indexerSettings, ponderRpc } from "../src/config/indexer.js";
import { ConfigError } from "../src/config/parse.js";
import { seedPgliteDirectory } from "../src/indexer/pglite.js";

const EERC = "0x0165878a594ca255338adfa4d48449f69242eb8f";
const REGISTRAR = "0x5fc8d32690cc91d4c39d9d3abcbd16989f875707";
const REGISTRY = "0x2279b7a0a67db372996a5fab50d91eaa73d2ebe6";
const LEDGER = "0x8a791620dd6260079bf849dc5567adc3f2fdc318";
const POOL = "0x14dc79964da2c08b23698b3d3cc7ca32193d9955";

function manifestFile(chainId: number, startBlock: number): string {
  const path = join(mkdtempSync(join(tmpdir(), "bs-settings-")), "deployment.json");
  const addr = "0x00000000000000000000000000000000000000aa";
  writeFileSync(
    path,
    JSON.stringify({
      network: "anvil",
      chainId,
      startBlock,
      decimals: 6,
      isConverter: true,
      owner: addr,
      auditor: addr,
      revenuePool: POOL,
      contracts: { registrar: REGISTRAR, encryptedERC: EERC, token: addr, providerRegistry: REGISTRY, usageLedger: LEDGER, verifiers: {} },
    }),
  );
  return path;
}

describe("indexer settings", () => {
  it("reads chain, addresses and start block from the manifest, with fast polling on anvil and PGlite by default", () => {
    const s = indexerSettings({ DEPLOYMENT_FILE: manifestFile(31337, 7), RPC_URL: "http://127.0.0.1:9999" });
    expect(s).toMatchObject({
      source: "manifest",
      chainName: "anvil",
      chainId: 31337,
      rpcUrl: "http://127.0.0.1:9999",
      pollingInterval: 100,
      startBlock: 7,
      contracts: {
        encryptedERC: getAddress(EERC),
        registrar: getAddress(REGISTRAR),
        providerRegistry: getAddress(REGISTRY),
        usageLedger: getAddress(LEDGER),
      },
      revenuePool: getAddress(POOL),
    });
    expect(s.database).toMatchObject({ kind: "pglite" });
    expect(s.database.kind === "pglite" && s.database.directory.endsWith(join(".ponder", "pglite"))).toBe(true);
  });

  it("indexes the audited deployment on Fuji, with the usage contracts, from the environment", () => {
    const s = indexerSettings({
      EERC_ADDRESS: EERC,
      REGISTRAR_ADDRESS: REGISTRAR,
      PROVIDER_REGISTRY_ADDRESS: REGISTRY,
      USAGE_LEDGER_ADDRESS: LEDGER,
      REVENUE_POOL_ADDRESS: POOL,
      START_BLOCK: "38000000",
      RPC_URL: "http://ignored",
      PONDER_RPC_URL_43113: "https://fuji.example/rpc",
      DATABASE_URL: "postgresql://u@db/x",
    });
    expect(s).toMatchObject({
      source: "env",
      chainName: "fuji",
      chainId: 43113,
      rpcUrl: "https://fuji.example/rpc",
      pollingInterval: 1000,
      startBlock: 38000000,
    });
    expect(s.contracts).toEqual({
      encryptedERC: getAddress(EERC),
      registrar: getAddress(REGISTRAR),
      providerRegistry: getAddress(REGISTRY),
      usageLedger: getAddress(LEDGER),
      // Circle's USDC on Fuji unless USDC_ADDRESS says otherwise.
      token: getAddress("0x5425890298aed601595a70AB815c96711a31Bc65"),
    });
    expect(s.revenuePool).toBe(getAddress(POOL));
    expect(s.database).toEqual({ kind: "postgres", connectionString: "postgresql://u@db/x" });
  });

  it("defaults the RPC to the local node and the PGlite directory to PONDER_PGLITE_DIR", () => {
    const s = indexerSettings({ DEPLOYMENT_FILE: manifestFile(31337, 0), PONDER_PGLITE_DIR: "/var/lib/bs/pglite" });
    expect(s.rpcUrl).toBe("http://127.0.0.1:8545");
    expect(s.rpcUrls).toEqual(["http://127.0.0.1:8545"]);
    expect(s.database).toEqual({ kind: "pglite", directory: "/var/lib/bs/pglite" });
  });

  it("takes several comma-separated RPC URLs, each its own rate-limit bucket in Ponder", () => {
    const s = indexerSettings({ DEPLOYMENT_FILE: manifestFile(31337, 0), PONDER_RPC_URL_31337: "http://a:8545, http://b:8545," });
    expect(s.rpcUrls).toEqual(["http://a:8545", "http://b:8545"]);
    expect(s.rpcUrl).toBe("http://a:8545");
  });

  it("lists each RPC URL once per rate-limit bucket: 16 on anvil, 1 elsewhere, PONDER_RPC_BUCKETS otherwise", () => {
    const local = indexerSettings({ DEPLOYMENT_FILE: manifestFile(31337, 0), RPC_URL: "http://a:8545" });
    expect(local.rpcBuckets).toBe(16);
    expect(ponderRpc(local)).toEqual(Array(16).fill("http://a:8545"));
    const remote = indexerSettings({ DEPLOYMENT_FILE: manifestFile(43113, 0), PONDER_RPC_URL_43113: "https://fuji.example/rpc" });
    expect(remote.rpcBuckets).toBe(1);
    expect(ponderRpc(remote)).toBe("https://fuji.example/rpc");
    const two = indexerSettings({
      DEPLOYMENT_FILE: manifestFile(43113, 0),
      RPC_URL: "http://a:8545,http://b:8545",
      PONDER_RPC_BUCKETS: "2",
    });
    expect(ponderRpc(two)).toEqual(["http://a:8545", "http://a:8545", "http://b:8545", "http://b:8545"]);
    for (const bad of ["0", "65", "two"]) {
      expect(() => indexerSettings({ DEPLOYMENT_FILE: manifestFile(31337, 0), PONDER_RPC_BUCKETS: bad })).toThrow(/PONDER_RPC_BUCKETS/);
    }
  });

  it("rejects missing addresses, a bad start block and a missing manifest by name", () => {
    expect(() => indexerSettings({ EERC_ADDRESS: EERC })).toThrow(ConfigError);
    expect(() => indexerSettings({ EERC_ADDRESS: EERC })).toThrow(/REGISTRAR_ADDRESS/);
    const eercOnly = { EERC_ADDRESS: EERC, REGISTRAR_ADDRESS: REGISTRAR };
    expect(() => indexerSettings(eercOnly)).toThrow(/PROVIDER_REGISTRY_ADDRESS/);
    expect(() => indexerSettings({ ...eercOnly, PROVIDER_REGISTRY_ADDRESS: REGISTRY })).toThrow(/USAGE_LEDGER_ADDRESS/);
    const usage = { ...eercOnly, PROVIDER_REGISTRY_ADDRESS: REGISTRY, USAGE_LEDGER_ADDRESS: LEDGER };
    expect(() => indexerSettings(usage)).toThrow(/REVENUE_POOL_ADDRESS/);
    const all = { ...usage, REVENUE_POOL_ADDRESS: POOL };
    expect(() => indexerSettings({ ...all, START_BLOCK: "-1" })).toThrow(/START_BLOCK/);
    expect(() => indexerSettings({ DEPLOYMENT_FILE: "/nonexistent/deployment.json" })).toThrow(
      /no deployment manifest at \/nonexistent\/deployment.json: pass the operator.s deployment file .* with --manifest/,
    );
  });
});

describe("PGlite directory", () => {
  it("starts a fresh directory from an empty cluster made once, and leaves a used one alone", async () => {
    const root = mkdtempSync(join(tmpdir(), "bs-pglite-"));
    const templates = join(root, "templates");
    const first = join(root, "first");
    expect(await seedPgliteDirectory(first, templates)).toBe("seeded");
    const [template] = readdirSync(templates);
    expect(template).toMatch(/^pglite-\d+\.\d+\.\d+$/);
    // The data of a cluster, without the files of the process that made it.
    expect(existsSync(join(first, "PG_VERSION"))).toBe(true);
    expect(existsSync(join(first, "postmaster.pid"))).toBe(false);
    const db = new PGlite(first);
    const tables = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
    );
    expect(tables.rows).toEqual([{ n: 0 }]);
    await db.exec("CREATE TABLE t (x int)");
    await db.close();

    // A second directory reuses the template; the first one's table is not in it.
    const second = join(root, "second");
    mkdirSync(second);
    expect(await seedPgliteDirectory(second, templates)).toBe("seeded");
    expect(readdirSync(templates)).toEqual([template]);
    const db2 = new PGlite(second);
    expect((await db2.query("SELECT to_regclass('t') AS t")).rows).toEqual([{ t: null }]);
    await db2.close();

    expect(await seedPgliteDirectory(first, templates)).toBe("left");
    const other = join(root, "other");
    mkdirSync(other);
    writeFileSync(join(other, "notes.txt"), "not a cluster");
    expect(await seedPgliteDirectory(other, templates)).toBe("left");
    expect(readdirSync(other)).toEqual(["notes.txt"]);
  });
});
