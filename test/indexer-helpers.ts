import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Account, Address } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { expect } from "vitest";
import { EncryptedERCAbi } from "../abis/EncryptedERCAbi.js";
import { TestUSDCAbi } from "../abis/TestUSDCAbi.js";
import { buildAudited, deployAuditedEerc } from "../scripts/interop/build-audited.js";
import type { ChainClients } from "../src/chain/clients.js";
import { connectChain } from "../src/chain/clients.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { deploy } from "../src/deployment/deploy.js";
import type { DeploymentManifest } from "../src/deployment/manifest.js";
import type { SettlementSettings } from "../src/deployment/settlement.js";
import { decryptBalance } from "../src/eerc/balance.js";
import { EercClient, toBalanceView } from "../src/eerc/client.js";
import type { Prover } from "../src/eerc/prover.js";

export const accounts = ANVIL_KEYS.map((k) => privateKeyToAccount(k));

/**
 * The eERC, ProviderRegistry and UsageLedger on `rpcUrl`, deployed by anvil's account #0 with #9
 * as the auditor. With EERC_AUDITED_DIR set (`npm run test:interop`) the eERC is the audited one
 * built from that checkout, and everything else attaches to it as it would on Fuji.
 */
export async function deployForTests(args: {
  rpcUrl: string;
  prover: Prover;
  isConverter?: boolean;
  deployer?: Account;
  auditor?: Account;
  network?: string;
  settlement?: SettlementSettings;
}) {
  const common = {
    rpcUrl: args.rpcUrl,
    network: args.network ?? "anvil-test",
    deployer: args.deployer ?? accounts[0]!,
    auditor: args.auditor ?? accounts[9]!,
    prover: args.prover,
    settlement: args.settlement,
    write: false,
  };
  const audited = process.env.EERC_AUDITED_DIR;
  if (!audited) return deploy({ ...common, isConverter: args.isConverter });
  const chain = await connectChain(args.rpcUrl);
  const startBlock = Number(await chain.publicClient.getBlockNumber());
  const build = await buildAudited(audited, { log: () => {} });
  const core = await deployAuditedEerc({ chain, deployer: common.deployer, build, isConverter: args.isConverter });
  return deploy({
    ...common,
    eerc: { encryptedERC: core.encryptedERC, registrar: core.registrar, startBlock },
    circuits: args.prover.artifacts,
  });
}

/** A deployment on `rpcUrl` with its manifest written to a fresh temporary directory. */
export async function deployForIndexer(args: { rpcUrl: string; prover: Prover; isConverter?: boolean }) {
  const manifest = await deployForTests(args);
  const dir = mkdtempSync(join(tmpdir(), "bs-indexer-"));
  const manifestPath = join(dir, "deployment.json");
  writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
  return { manifest: manifest as DeploymentManifest, manifestPath, dir };
}

export function connectClient(chain: ChainClients, manifest: DeploymentManifest, prover: Prover, i: number): Promise<EercClient> {
  return EercClient.connect({
    publicClient: chain.publicClient,
    wallet: chain.walletFor(accounts[i]!),
    contracts: { encryptedERC: manifest.contracts.encryptedERC, registrar: manifest.contracts.registrar },
    prover,
  });
}

export async function mintUsdc(chain: ChainClients, manifest: DeploymentManifest, to: Address, amount: bigint): Promise<void> {
  const hash = await chain.walletFor(accounts[0]!).writeContract({
    address: manifest.contracts.token,
    abi: TestUSDCAbi,
    functionName: "mint",
    args: [to, amount],
  } as never);
  await chain.publicClient.waitForTransactionReceipt({ hash });
}

export async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

type HistoryRow = {
  tokenId: string;
  blockNumber: string;
  logIndex: number;
  kind: string;
  txHash: string;
  eGCT: { c1: [string, string]; c2: [string, string] };
  nonce: string;
  transactionIndex: string;
  balancePCT: string[];
  amountPCTs: { pct: string[]; index: string }[];
};

const big = (xs: readonly string[]) => xs.map(BigInt);
export const rowView = (row: HistoryRow) => ({
  eGCT: { c1: big(row.eGCT.c1) as [bigint, bigint], c2: big(row.eGCT.c2) as [bigint, bigint] },
  balancePCT: big(row.balancePCT),
  amountPCTs: row.amountPCTs.map((a) => ({ pct: big(a.pct), index: BigInt(a.index) })),
});

/**
 * Checks an account's indexed history against the chain: the last row of each (token, block)
 * equals `balanceOf` at that block (EGCT, nonce, transactionIndex, balancePCT and pending amount
 * PCTs), and the last row of each token decrypts with the owner's key to the balance the SDK
 * decrypts from the chain now.
 * Returns the decrypted balance per token.
 */
export async function expectHistoryMatchesChain(args: {
  chain: ChainClients;
  manifest: DeploymentManifest;
  indexerUrl: string;
  /** The account and its key (an EercClient, or any holder of a registered key). */
  client: Pick<EercClient, "address" | "exportPrivateKey">;
}): Promise<Map<bigint, bigint>> {
  const balanceOf = async (tokenId: bigint, blockNumber?: bigint) =>
    toBalanceView(
      (await args.chain.publicClient.readContract({
        address: args.manifest.contracts.encryptedERC,
        abi: EncryptedERCAbi,
        functionName: "balanceOf",
        args: [args.client.address, tokenId],
        blockNumber,
      })) as never,
    );
  const { body, status } = await getJson(`${args.indexerUrl}/providers/${args.client.address}/earnings`);
  expect(status).toBe(200);
  const rows = body.balanceHistory as HistoryRow[];
  const lastPerBlock = new Map<string, HistoryRow>();
  for (const row of rows) lastPerBlock.set(`${row.tokenId}/${row.blockNumber}`, row);
  for (const row of lastPerBlock.values()) {
    const onChain = await balanceOf(BigInt(row.tokenId), BigInt(row.blockNumber));
    const indexed = rowView(row);
    // Pending PCTs are a set of (index, pct): the audited contract prunes them by swap-and-pop.
    const byIndex = <T extends { index: bigint }>(pcts: readonly T[]) =>
      [...pcts].sort((a, b) => (a.index < b.index ? -1 : a.index > b.index ? 1 : 0));
    expect(
      { ...indexed, amountPCTs: byIndex(indexed.amountPCTs), nonce: BigInt(row.nonce), transactionIndex: BigInt(row.transactionIndex) },
      `${row.kind} in block ${row.blockNumber}`,
    ).toEqual({
      eGCT: onChain.eGCT,
      balancePCT: onChain.balancePCT,
      amountPCTs: byIndex(onChain.amountPCTs),
      nonce: onChain.nonce,
      transactionIndex: onChain.transactionIndex,
    });
  }
  const balances = new Map<bigint, bigint>();
  const lastPerToken = new Map<string, HistoryRow>();
  for (const row of rows) lastPerToken.set(row.tokenId, row);
  for (const [tokenId, row] of lastPerToken) {
    const sk = args.client.exportPrivateKey();
    const decrypted = decryptBalance(rowView(row), sk);
    expect(decrypted).toBe(decryptBalance(await balanceOf(BigInt(tokenId)), sk));
    balances.set(BigInt(tokenId), decrypted);
  }
  return balances;
}

/** Polls `check` until it returns true. */
export async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
