import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Address, type Hex, parseAbiItem } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { TestUSDCAbi } from "../abis/TestUSDCAbi.js";
import { type Anvil, startAnvil } from "../src/chain/anvil.js";
import { connectChain } from "../src/chain/clients.js";
import { EercClient } from "../src/eerc/client.js";
import { decryptPCT } from "../src/eerc/pct.js";
import { Prover } from "../src/eerc/prover.js";
import { formatUsdc, parseUsdc } from "../src/money/usdc.js";
import { decryptHistory, HistoryApiClient } from "../src/history/index.js";
import { type RunningIndexer, startIndexer, waitForIndexedBlock } from "../src/indexer/process.js";
import { ANVIL_KEYS, deploy } from "./deploy.js";

type Report = {
  chainId: number;
  decimals: number;
  transfers: { from: Address; to: Address; amountMicro: string; txHash: Hex }[];
  balances: { address: Address; decryptedMicro: string; expectedMicro: string }[];
  withdrawals: { address: Address; amountMicro: string; txHash: Hex }[];
  history: { address: Address; decryptedMicro: string }[];
};

function reportPath(argv: string[]): string | undefined {
  const i = argv.indexOf("--report");
  if (i === -1) return undefined;
  const path = argv[i + 1];
  if (!path || path.startsWith("--")) throw new Error("--report needs a file path");
  return path;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ")).join("\n");
}

async function main(): Promise<void> {
  const report = reportPath(process.argv.slice(2));
  const started = Date.now();
  const step = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`);

  let anvil: Anvil | undefined;
  const rpcUrl = process.env.RPC_URL || (anvil = await startAnvil()).rpcUrl;
  step(anvil ? `started anvil at ${rpcUrl}` : `using RPC ${rpcUrl}`);
  const prover = new Prover();
  let indexer: RunningIndexer | undefined;
  const pgliteDir = mkdtempSync(join(tmpdir(), "backendshield-demo-pglite-"));
  try {
    const [deployer, alice, bob, carol, auditorAccount] = [0, 1, 2, 3, 9].map((i) => privateKeyToAccount(ANVIL_KEYS[i]!));
    const manifest = await deploy({
      rpcUrl,
      network: process.env.NETWORK ?? "anvil",
      deployer: deployer!,
      auditor: auditorAccount!,
      prover,
      log: step,
    });
    indexer = await startIndexer({ manifestPath: manifest.manifestPath, pgliteDir, env: { RPC_URL: rpcUrl } });
    step(`indexer and API serving at ${indexer.url} (GraphQL at ${indexer.url}/graphql)`);
    const chain = await connectChain(rpcUrl);
    const contracts = { encryptedERC: manifest.contracts.encryptedERC, registrar: manifest.contracts.registrar };
    const connect = (account: typeof alice) =>
      EercClient.connect({ publicClient: chain.publicClient, wallet: chain.walletFor(account!), contracts, prover });
    const users = { alice: await connect(alice), bob: await connect(bob), carol: await connect(carol) };
    const names = new Map(Object.entries(users).map(([n, u]) => [u.address, n]));
    const auditor = await connect(auditorAccount);

    for (const u of Object.values(users)) await u.register();
    step("registered alice, bob and carol");

    const usdc = manifest.contracts.token;
    const expected = new Map<Address, bigint>(Object.values(users).map((u) => [u.address, 0n]));
    for (const [u, amount] of [
      [users.alice, parseUsdc("250")],
      [users.bob, parseUsdc("100")],
    ] as const) {
      const hash = await chain.walletFor(deployer!).writeContract({
        address: usdc,
        abi: TestUSDCAbi,
        functionName: "mint",
        args: [u.address, amount],
      } as never);
      await chain.publicClient.waitForTransactionReceipt({ hash });
      await u.deposit({ token: usdc, amount });
      expected.set(u.address, expected.get(u.address)! + amount);
    }
    const tokenId = await users.alice.tokenId(usdc);
    step(`deposited 250 USDC (alice) and 100 USDC (bob) as token id ${tokenId}`);

    const transfers: Report["transfers"] = [];
    for (const [from, to, amount] of [
      [users.alice, users.bob, parseUsdc("12.345678")],
      [users.bob, users.carol, parseUsdc("0.000001")],
      [users.alice, users.carol, parseUsdc("7.5")],
      [users.carol, users.alice, parseUsdc("3.000001")],
    ] as const) {
      const receipt = await from.transfer({ to: to.address, amount, tokenId });
      expected.set(from.address, expected.get(from.address)! - amount);
      expected.set(to.address, expected.get(to.address)! + amount);
      transfers.push({ from: from.address, to: to.address, amountMicro: amount.toString(), txHash: receipt.transactionHash });
      step(`private transfer ${names.get(from.address)} → ${names.get(to.address)}: ${formatUsdc(amount)} USDC (${receipt.transactionHash})`);
    }

    const withdrawals: Report["withdrawals"] = [];
    for (const [u, amount] of [
      [users.carol, parseUsdc("2.5")],
      [users.bob, parseUsdc("1.000001")],
    ] as const) {
      const receipt = await u.withdraw({ amount, tokenId });
      expected.set(u.address, expected.get(u.address)! - amount);
      withdrawals.push({ address: u.address, amountMicro: amount.toString(), txHash: receipt.transactionHash });
      step(`${names.get(u.address)} withdrew ${formatUsdc(amount)} USDC`);
    }

    const balances: Report["balances"] = [];
    for (const u of Object.values(users)) {
      const decrypted = await u.balance(tokenId);
      balances.push({ address: u.address, decryptedMicro: decrypted.toString(), expectedMicro: expected.get(u.address)!.toString() });
    }

    // The same path a provider's CLI takes: the API's indexed history, decrypted locally.
    await waitForIndexedBlock(indexer.url, await chain.publicClient.getBlockNumber());
    const api = new HistoryApiClient(indexer.url);
    const history: Report["history"] = [];
    for (const u of Object.values(users)) {
      const decrypted = decryptHistory(await api.earnings(u.address), u.exportPrivateKey());
      const token = decrypted.tokens.find((t) => t.tokenId === tokenId);
      history.push({ address: u.address, decryptedMicro: (token?.balanceMicro ?? 0n).toString() });
    }
    step("indexed balance histories decrypted through the API");

    const logs = await chain.publicClient.getLogs({
      address: manifest.contracts.encryptedERC,
      event: parseAbiItem("event PrivateTransfer(address indexed from, address indexed to, uint256[7] auditorPCT, address indexed auditorAddress)"),
      fromBlock: BigInt(manifest.startBlock),
    });
    const audited = logs.map((l) => decryptPCT(l.args.auditorPCT!, auditor.exportPrivateKey()));

    console.log(`\nchain ${manifest.chainId}, eERC decimals ${manifest.decimals} (1 unit = 0.000001 USDC)\n`);
    console.log(table([
      ["account", "address", "on-chain USDC", "indexed USDC", "expected USDC", "ok"],
      ...balances.map((b, i) => [
        names.get(b.address)!,
        b.address,
        formatUsdc(BigInt(b.decryptedMicro)),
        formatUsdc(BigInt(history[i]!.decryptedMicro)),
        formatUsdc(BigInt(b.expectedMicro)),
        b.decryptedMicro === b.expectedMicro && history[i]!.decryptedMicro === b.expectedMicro ? "yes" : "NO",
      ]),
    ]));
    console.log(`\nauditor decrypted ${audited.length} transfer amounts: ${audited.map(formatUsdc).join(", ")} USDC`);
    const eercSupply = await chain.publicClient.readContract({ address: usdc, abi: TestUSDCAbi, functionName: "balanceOf", args: [manifest.contracts.encryptedERC] });
    console.log(`USDC held by the eERC contract: ${formatUsdc(eercSupply as bigint)}`);

    if (report) {
      const out: Report = { chainId: manifest.chainId, decimals: manifest.decimals, transfers, balances, withdrawals, history };
      writeFileSync(report, `${JSON.stringify(out, null, 2)}\n`);
      console.log(`report written to ${report}`);
    }
    const ok =
      balances.every((b, i) => b.decryptedMicro === b.expectedMicro && history[i]!.decryptedMicro === b.expectedMicro) &&
      audited.length === transfers.length &&
      audited.every((a, i) => a.toString() === transfers[i]!.amountMicro);
    step(ok ? "demo finished: every balance matches" : "demo FAILED: a balance or audit figure does not match");
    process.exitCode = ok ? 0 : 1;
  } finally {
    await indexer?.stop();
    await prover.close();
    await anvil?.stop();
    rmSync(pgliteDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err);
  process.exit(1);
});
