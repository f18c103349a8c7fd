import { join } from "node:path";
import { type Address, encodeFunctionData, getAddress, type Hex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EncryptedERCAbi } from "../abis/EncryptedERCAbi.js";
import { RegistrarAbi } from "../abis/RegistrarAbi.js";
import { TestUSDCAbi } from "../abis/TestUSDCAbi.js";
import { loadArtifact } from "../src/build/contracts.js";
import { type Anvil, startAnvil } from "../src/chain/anvil.js";
import { type ChainClients, connectChain } from "../src/chain/clients.js";
import type { DeploymentManifest } from "../src/deployment/manifest.js";
import { proofToCalldata } from "../src/eerc/calldata.js";
import { type EercClient, toBalanceView } from "../src/eerc/client.js";
import { randomScalar } from "../src/eerc/curve.js";
import { registrationInputs, transferInputs, withdrawInputs } from "../src/eerc/inputs.js";
import { publicKeyOf } from "../src/eerc/keys.js";
import { decryptPCT, encryptPCT } from "../src/eerc/pct.js";
import { Prover } from "../src/eerc/prover.js";
import { type RunningIndexer, startIndexer } from "../src/indexer/process.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { accounts, connectClient, deployForIndexer, eventually, expectHistoryMatchesChain, getJson, mintUsdc } from "./indexer-helpers.js";

/** Keys that would carry a plaintext amount; only deposits and withdrawals are public. */
const PLAINTEXT_KEYS = /^(amount|value|balance|credited|plain)$/i;
function expectNoPlaintextAmounts(json: unknown, path = "body"): void {
  if (Array.isArray(json)) {
    json.forEach((v, i) => {
      expectNoPlaintextAmounts(v, `${path}[${i}]`);
    });
  } else if (json !== null && typeof json === "object") {
    for (const [k, v] of Object.entries(json)) {
      expect(PLAINTEXT_KEYS.test(k), `${path}.${k}`).toBe(false);
      expectNoPlaintextAmounts(v, `${path}.${k}`);
    }
  }
}

describe("indexer on PGlite: eERC converter flow with real proofs", () => {
  let anvil: Anvil;
  let chain: ChainClients;
  const prover = new Prover();
  let manifest: DeploymentManifest;
  let indexer: RunningIndexer;
  let alice: EercClient, bob: EercClient, carol: EercClient, auditor: EercClient;
  const tokenId = 1n;
  const sent: { from: string; to: string; amount: bigint; hash: Hex }[] = [];

  const transfer = async (from: EercClient, to: EercClient, amount: bigint, message?: Hex) => {
    const receipt = await from.transfer({ to: to.address, amount, tokenId, message });
    sent.push({ from: from.address, to: to.address, amount, hash: receipt.transactionHash });
    return receipt;
  };

  beforeAll(async () => {
    anvil = await startAnvil();
    chain = await connectChain(anvil.rpcUrl);
    const deployed = await deployForIndexer({ rpcUrl: anvil.rpcUrl, prover });
    manifest = deployed.manifest;
    [alice, bob, carol, auditor] = await Promise.all([1, 2, 3, 9].map((i) => connectClient(chain, manifest, prover, i)));
    for (const c of [alice, bob, carol]) await c.register();
    await mintUsdc(chain, manifest, alice.address, 10_000_000n);
    // Indexed by the backfill: everything up to here happens before the indexer starts.
    await alice.deposit({ token: manifest.contracts.token, amount: 3_000_000n });
    await transfer(alice, bob, 1n);
    indexer = await startIndexer({
      manifestPath: deployed.manifestPath,
      env: { RPC_URL: anvil.rpcUrl },
      pgliteDir: join(deployed.dir, "pglite"),
      logFile: join(deployed.dir, "ponder.log"),
    });
  });

  afterAll(async () => {
    await indexer?.stop();
    await prover.close();
    await anvil?.stop();
  });

  it("follows live transfers (1 micro-unit, messages, a self-transfer), a second deposit and a withdrawal", async () => {
    // Messages where the eERC has the overloads (not the May 2025 audited version).
    const message = (m: Hex) => (manifest.eerc?.messages ? m : undefined);
    await alice.deposit({ token: manifest.contracts.token, amount: 1_000_000n, message: message("0xdeadbeef") });
    await transfer(alice, carol, 250_000n, message("0x0102"));
    await transfer(alice, bob, 10n);
    await transfer(bob, carol, 5n);
    await transfer(alice, alice, 7n);
    const last = await carol.withdraw({ amount: 100_000n, tokenId });
    const started = Date.now();
    await new IndexerClient(indexer.url).waitForBlock(last.blockNumber);
    expect(Date.now() - started).toBeLessThan(5_000);

    const expected = new Map([
      [alice.address, 3_000_000n + 1_000_000n - 1n - 250_000n - 10n],
      [bob.address, 1n + 10n - 5n],
      [carol.address, 250_000n + 5n - 100_000n],
    ]);
    for (const client of [alice, bob, carol]) {
      const balances = await expectHistoryMatchesChain({ chain, manifest, indexerUrl: indexer.url, client });
      expect(balances.get(tokenId)).toBe(expected.get(client.address));
    }
  });

  it("serves a provider's history in (block, logIndex) order with received transfers decryptable by the provider", async () => {
    const { status, body } = await getJson(`${indexer.url}/providers/${carol.address.toLowerCase()}/earnings`);
    expect(status).toBe(200);
    expect(body.account).toBe(carol.address);
    expect(body.publicKey).toEqual(carol.publicKey.map(String));
    expect(body.tokens).toEqual([{ tokenId: "1", tokenAddress: getAddress(manifest.contracts.token) }]);
    expect(body.balanceHistory.map((r: { kind: string }) => r.kind)).toEqual(["transfer_in", "transfer_in", "withdraw"]);
    const order = body.balanceHistory.map((r: { blockNumber: string; logIndex: number }) => [BigInt(r.blockNumber), r.logIndex]);
    expect(order).toEqual([...order].sort((a, b) => (a[0] === b[0] ? a[1] - b[1] : a[0] < b[0] ? -1 : 1)));
    const received = body.receivedTransfers.map((t: { from: string; amountPCT: string[]; txHash: string }) => ({
      from: t.from,
      amount: decryptPCT(t.amountPCT.map(BigInt), carol.exportPrivateKey()),
      hash: t.txHash,
    }));
    expect(received).toEqual(sent.filter((s) => s.to === carol.address).map(({ from, amount, hash }) => ({ from, amount, hash })));
    expectNoPlaintextAmounts(body);

    // A self-transfer is two rows of one event: the spend, then the credit.
    const aliceBody = (await getJson(`${indexer.url}/providers/${alice.address}/earnings`)).body;
    const self = aliceBody.balanceHistory.filter((r: { txHash: string }) => r.txHash === sent.at(-1)!.hash);
    expect(self.map((r: { kind: string }) => r.kind)).toEqual(["transfer_out", "transfer_in"]);
    // A provider with many credits between spends: bob's rows carry his pending amount PCTs.
    const bobBody = (await getJson(`${indexer.url}/providers/${bob.address}/earnings`)).body;
    expect(bobBody.balanceHistory.map((r: { kind: string; amountPCTs: unknown[] }) => [r.kind, r.amountPCTs.length])).toEqual([
      ["transfer_in", 1],
      ["transfer_in", 2],
      ["transfer_out", 0],
    ]);
  });

  it("filters by tokenId", async () => {
    const one = (await getJson(`${indexer.url}/providers/${bob.address}/earnings?tokenId=1`)).body;
    expect(one.balanceHistory.length).toBe(3);
    const none = await getJson(`${indexer.url}/providers/${bob.address}/earnings?tokenId=2`);
    expect(none.status).toBe(200);
    expect(none.body).toMatchObject({ tokens: [], balanceHistory: [], receivedTransfers: [] });
  });

  it("answers malformed and unknown input with 4xx JSON naming the field", async () => {
    const bad = await getJson(`${indexer.url}/providers/0x1234/earnings`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe("providerId");
    const unknown = await getJson(`${indexer.url}/providers/0x000000000000000000000000000000000000dEaD/earnings`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.field).toBe("providerId");
    // Holding USDC is not being registered: the deployer never registered an eERC key.
    expect((await getJson(`${indexer.url}/providers/${manifest.owner}/earnings`)).status).toBe(404);
    for (const q of ["abc", "-1", "1.5", "", "9".repeat(79)]) {
      const r = await getJson(`${indexer.url}/providers/${bob.address}/earnings?tokenId=${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error.field).toBe("tokenId");
    }
    const period = await getJson(`${indexer.url}/audit/totals?period=week`);
    expect(period.status).toBe(400);
    expect(period.body.error.field).toBe("period");
  });

  it("serves earnings at the canonical /accounts route, the /providers form by address as before, and its OpenAPI document", async () => {
    const canonical = await getJson(`${indexer.url}/accounts/${bob.address}/earnings?tokenId=1`);
    expect(canonical.status).toBe(200);
    expect(canonical.body).toEqual((await getJson(`${indexer.url}/providers/${bob.address}/earnings?tokenId=1`)).body);
    const bad = await getJson(`${indexer.url}/accounts/0x1234/earnings`);
    expect({ status: bad.status, field: bad.body.error.field }).toEqual({ status: 400, field: "address" });
    const unknown = await getJson(`${indexer.url}/accounts/0x000000000000000000000000000000000000dEaD/earnings`);
    expect({ status: unknown.status, field: unknown.body.error.field }).toEqual({ status: 404, field: "address" });
    const doc = await getJson(`${indexer.url}/openapi.json`);
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe("3.1.0");
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining(["/accounts/{address}/earnings", "/providers/{providerId}/earnings"]),
    );
  });

  it("gives the auditor every transfer and withdrawal PCT per UTC day and month", async () => {
    const { status, body } = await getJson(`${indexer.url}/audit/totals`);
    expect(status).toBe(200);
    expect(body.auditor).toBe(auditor.address);
    expect(body.auditorPublicKey).toEqual(auditor.publicKey.map(String));
    const sk = auditor.exportPrivateKey();
    const entries = body.periods.flatMap(
      (p: { period: string; tokenId: string; entries: { kind: string; auditorPCT: string[]; txHash: string }[] }) => {
        expect(p.period).toMatch(/^\d{4}-\d{2}-\d{2}$/);
        expect(p.tokenId).toBe("1");
        return p.entries.map((e) => ({ kind: e.kind, txHash: e.txHash, amount: decryptPCT(e.auditorPCT.map(BigInt), sk) }));
      },
    );
    expect(entries.filter((e: { kind: string }) => e.kind === "transfer")).toEqual(
      sent.map((s) => ({ kind: "transfer", txHash: s.hash, amount: s.amount })),
    );
    expect(entries.filter((e: { kind: string }) => e.kind === "withdraw").map((e: { amount: bigint }) => e.amount)).toEqual([100_000n]);
    expectNoPlaintextAmounts(body);
    const monthly = (await getJson(`${indexer.url}/audit/totals?period=month`)).body;
    expect(monthly.periods.every((p: { period: string }) => /^\d{4}-\d{2}$/.test(p.period))).toBe(true);
    expect(monthly.periods.flatMap((p: { entries: unknown[] }) => p.entries).length).toBe(entries.length);
  });

  it("serves GraphQL and SQL over HTTP, with public deposit and withdrawal amounts", async () => {
    const res = await fetch(`${indexer.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        query:
          '{ deposits(orderBy: "blockNumber") { items { account amount dust credited source } } privateMessages { items { messageType } } }',
      }),
    });
    const { data } = (await res.json()) as { data: any };
    expect(data.deposits.items).toEqual([
      { account: alice.address.toLowerCase(), amount: "3000000", dust: "0", credited: "3000000", source: "calldata" },
      { account: alice.address.toLowerCase(), amount: "1000000", dust: "0", credited: "1000000", source: "calldata" },
    ]);
    expect(data.privateMessages.items.map((m: { messageType: string }) => m.messageType).sort()).toEqual(
      manifest.eerc?.messages ? ["DEPOSIT", "PRIVATE_TRANSFER"] : [],
    );
    const root = await fetch(`${indexer.url}/`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ withdrawals { items { amount tokenAmount } } }" }),
    });
    expect(((await root.json()) as any).data.withdrawals.items).toEqual([{ amount: "100000", tokenAmount: "100000" }]);

    const counted = await fetch(`${indexer.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ privateTransfers { totalCount } }" }),
    });
    expect(((await counted.json()) as any).data.privateTransfers.totalCount).toBe(sent.length);
    // SQL over HTTP is off by default (and cannot be turned on with PGlite).
    const query = JSON.stringify({ json: { sql: 'select count(*)::int as n from "private_transfer"', params: [] } });
    const sql = await fetch(`${indexer.url}/sql/db?sql=${encodeURIComponent(query)}`);
    expect(sql.status).toBe(404);
    expect(((await sql.json()) as any).error).toEqual({ field: null, message: expect.stringContaining("API_SQL=1") });
  });

  it("indexes eERC calls relayed through a contract from the block's state", async () => {
    const { abi, bytecode } = await loadArtifact("CallForwarder");
    const owner = chain.walletFor(accounts[0]!);
    const deployed = await chain.publicClient.waitForTransactionReceipt({ hash: await owner.deployContract({ abi, bytecode } as never) });
    const forwarder = getAddress(deployed.contractAddress!);
    const eerc = manifest.contracts.encryptedERC;
    const usdc = manifest.contracts.token;
    const relay = async (target: Address, data: Hex) => {
      const hash = await owner.writeContract({ address: forwarder, abi, functionName: "forward", args: [target, data] } as never);
      const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
      expect(receipt.status).toBe("success");
      return receipt;
    };
    const proof = async (circuit: "registration" | "transfer" | "withdraw", input: Parameters<Prover["prove"]>[1]) => {
      const { proofPoints, publicSignals } = proofToCalldata(circuit, await prover.prove(circuit, input));
      return { proofPoints, publicSignals };
    };
    const balanceView = async () =>
      toBalanceView(
        (await chain.publicClient.readContract({
          address: eerc,
          abi: EncryptedERCAbi,
          functionName: "balanceOf",
          args: [forwarder, tokenId],
        })) as never,
      );

    // A smart-contract wallet: its own eERC key, every call relayed by another account.
    const sk = randomScalar();
    const pk = publicKeyOf(sk);
    const registration = registrationInputs({ sk, address: forwarder, chainId: BigInt(chain.chain.id) });
    await relay(
      manifest.contracts.registrar,
      encodeFunctionData({ abi: RegistrarAbi, functionName: "register", args: [await proof("registration", registration.input)] as never }),
    );
    await mintUsdc(chain, manifest, forwarder, 2_000_000n);
    await relay(usdc, encodeFunctionData({ abi: TestUSDCAbi, functionName: "approve", args: [eerc, 2_000_000n] }));
    const depositReceipt = await relay(
      eerc,
      encodeFunctionData({
        abi: EncryptedERCAbi,
        functionName: "deposit",
        args: [2_000_000n, usdc, encryptPCT(2_000_000n, pk).pct] as never,
      }),
    );
    const t = transferInputs({
      sk,
      value: 1n,
      balance: 2_000_000n,
      balanceCT: (await balanceView()).eGCT,
      receiverPk: bob.publicKey,
      auditorPk: auditor.publicKey,
    });
    const transferReceipt = await relay(
      eerc,
      encodeFunctionData({
        abi: EncryptedERCAbi,
        functionName: "transfer",
        args: [bob.address, tokenId, await proof("transfer", t.input), encryptPCT(1_999_999n, pk).pct] as never,
      }),
    );
    const w = withdrawInputs({
      sk,
      value: 500_000n,
      balance: 1_999_999n,
      balanceCT: (await balanceView()).eGCT,
      auditorPk: auditor.publicKey,
    });
    const last = await relay(
      eerc,
      encodeFunctionData({
        abi: EncryptedERCAbi,
        functionName: "withdraw",
        args: [tokenId, await proof("withdraw", w.input), encryptPCT(1_499_999n, pk).pct] as never,
      }),
    );
    await new IndexerClient(indexer.url).waitForBlock(last.blockNumber);

    const wallet = { address: forwarder, exportPrivateKey: () => sk };
    expect((await expectHistoryMatchesChain({ chain, manifest, indexerUrl: indexer.url, client: wallet })).get(tokenId)).toBe(1_499_999n);
    await expectHistoryMatchesChain({ chain, manifest, indexerUrl: indexer.url, client: bob });
    const body = (await getJson(`${indexer.url}/providers/${forwarder}/earnings`)).body;
    expect(body.balanceHistory.map((r: { kind: string }) => r.kind)).toEqual(["deposit", "transfer_out", "withdraw"]);
    const toBob = (await getJson(`${indexer.url}/providers/${bob.address}/earnings`)).body.receivedTransfers.at(-1);
    expect(toBob).toMatchObject({ from: forwarder, tokenId: "1", txHash: transferReceipt.transactionHash });
    expect(decryptPCT(toBob.amountPCT.map(BigInt), bob.exportPrivateKey())).toBe(1n);

    const res = await fetch(`${indexer.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        query: `{ deposits(where: { account: "${forwarder}" }) { items { txHash source amountPCT } }
                  privateTransfers(where: { from: "${forwarder}" }) { items { tokenId source senderVTT } }
                  withdrawals(where: { account: "${forwarder}" }) { items { amount source } } }`,
      }),
    });
    const { data } = (await res.json()) as { data: any };
    expect(data.deposits.items).toHaveLength(1);
    expect(data.deposits.items[0]).toMatchObject({ txHash: depositReceipt.transactionHash, source: "block_state" });
    expect(decryptPCT(data.deposits.items[0].amountPCT.map(BigInt), sk)).toBe(2_000_000n);
    expect(data.privateTransfers.items).toEqual([{ tokenId: "1", source: "block_state", senderVTT: null }]);
    expect(data.withdrawals.items).toEqual([{ amount: "500000", source: "block_state" }]);
  });

  it("follows a reorg within the finality window: reverted blocks vanish, the new branch is indexed", async () => {
    const snapshot = (await chain.publicClient.request({ method: "evm_snapshot" as never })) as Hex;
    const dropped = await transfer(alice, bob, 3n);
    await alice.deposit({ token: manifest.contracts.token, amount: 500n });
    await eventually(
      async () =>
        (await getJson(`${indexer.url}/providers/${bob.address}/earnings`)).body.receivedTransfers.some(
          (t: { txHash: string }) => t.txHash === dropped.transactionHash,
        ),
      "the transfer that is about to be reverted",
    );
    sent.pop();

    expect(await chain.publicClient.request({ method: "evm_revert" as never, params: [snapshot] as never })).toBe(true);
    const replacement = await transfer(alice, carol, 4n);
    await carol.deposit({ token: manifest.contracts.token, amount: 1_000n });
    // Ponder may have asked for a block of the dropped branch just as it vanished: it retries
    // eth_getLogs for it with a backoff of up to 32 s before it moves on to the new branch.
    await eventually(
      async () => {
        const bobBody = (await getJson(`${indexer.url}/providers/${bob.address}/earnings`)).body;
        const carolBody = (await getJson(`${indexer.url}/providers/${carol.address}/earnings`)).body;
        return (
          !bobBody.receivedTransfers.some((t: { txHash: string }) => t.txHash === dropped.transactionHash) &&
          carolBody.balanceHistory.some((r: { kind: string }) => r.kind === "deposit")
        );
      },
      "the indexer to follow the new branch",
      90_000,
    );
    expect(indexer.recentOutput()).not.toMatch(/unrecoverable/i);

    for (const client of [alice, bob, carol]) await expectHistoryMatchesChain({ chain, manifest, indexerUrl: indexer.url, client });
    const carolBody = (await getJson(`${indexer.url}/providers/${carol.address}/earnings`)).body;
    expect(carolBody.receivedTransfers.at(-1).txHash).toBe(replacement.transactionHash);
    const audit = (await getJson(`${indexer.url}/audit/totals`)).body;
    const hashes = audit.periods.flatMap((p: { entries: { txHash: string }[] }) => p.entries.map((e) => e.txHash));
    expect(hashes).not.toContain(dropped.transactionHash);
    expect(hashes).toContain(replacement.transactionHash);
  }, 180_000);
});

describe("indexer on PGlite: standalone eERC (private mint and burn)", () => {
  let anvil: Anvil;
  let chain: ChainClients;
  const prover = new Prover();
  let indexer: RunningIndexer;
  let manifest: DeploymentManifest;
  let owner: EercClient, dave: EercClient, erin: EercClient, auditor: EercClient;

  beforeAll(async () => {
    anvil = await startAnvil();
    chain = await connectChain(anvil.rpcUrl);
    const deployed = await deployForIndexer({ rpcUrl: anvil.rpcUrl, prover, isConverter: false });
    manifest = deployed.manifest;
    [owner, dave, erin, auditor] = await Promise.all([0, 4, 5, 9].map((i) => connectClient(chain, manifest, prover, i)));
    await dave.register();
    await erin.register();
    await owner.mint({ to: dave.address, amount: 1_234_567n });
    await owner.mint({ to: erin.address, amount: 500n });
    await dave.transfer({ to: erin.address, amount: 1n, tokenId: 0n });
    const last = await dave.burn({ amount: 234_567n });
    indexer = await startIndexer({
      manifestPath: deployed.manifestPath,
      env: { RPC_URL: anvil.rpcUrl },
      pgliteDir: join(deployed.dir, "pglite"),
      logFile: join(deployed.dir, "ponder.log"),
    });
    await new IndexerClient(indexer.url).waitForBlock(last.blockNumber);
  });

  afterAll(async () => {
    await indexer?.stop();
    await prover.close();
    await anvil?.stop();
  });

  it("backfills mints, a transfer and a burn on token 0, matching the chain", async () => {
    const daveBalances = await expectHistoryMatchesChain({ chain, manifest, indexerUrl: indexer.url, client: dave });
    const erinBalances = await expectHistoryMatchesChain({ chain, manifest, indexerUrl: indexer.url, client: erin });
    expect(daveBalances.get(0n)).toBe(1_000_000n - 1n);
    expect(erinBalances.get(0n)).toBe(501n);
    const body = (await getJson(`${indexer.url}/providers/${dave.address}/earnings`)).body;
    expect(body.tokens).toEqual([{ tokenId: "0", tokenAddress: null }]);
    expect(body.balanceHistory.map((r: { kind: string }) => r.kind)).toEqual(["mint", "transfer_out", "burn"]);

    const audit = (await getJson(`${indexer.url}/audit/totals`)).body;
    const sk = auditor.exportPrivateKey();
    const entries = audit.periods.flatMap((p: { tokenId: string; entries: { kind: string; auditorPCT: string[] }[] }) =>
      p.entries.map((e) => [p.tokenId, e.kind, decryptPCT(e.auditorPCT.map(BigInt), sk)]),
    );
    expect(entries).toEqual([
      ["0", "mint", 1_234_567n],
      ["0", "mint", 500n],
      ["0", "transfer", 1n],
      ["0", "burn", 234_567n],
    ]);
  });
});
