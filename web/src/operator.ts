import { type Address, bytesToHex, getAddress, type Hex, isAddressEqual } from "viem";
import { summarize } from "../../src/errors.js";
import { decryptHistory } from "../../src/history/decrypt.js";
import { IndexerClient } from "../../src/indexer-client/client.js";
import { AgentClient } from "../../src/payout/client.js";
import { type LedgerSnapshot, PayoutLedgerView } from "../../src/payout/ledger-view.js";
import type { AgentChain, AgentStatus } from "../../src/payout/schemas.js";
import { distributeTypedData } from "../../src/payout/server.js";
import type { Signer } from "./wallet.js";

/**
 * The operator view's figures: the payout agent's state, the payer's encrypted balance against
 * what is owed next (doctor's payer check: `PayoutLedgerView` over the API, decrypted here with the
 * operator's key held in memory), ingestion per usage server and the indexer's lag. Each part that
 * cannot be read says why, without hiding the others.
 */

/** `GET /ops/health` of the API (`HealthProbe` in `src/api/health.ts`, which this page cannot import: it is Ponder-side). */
export type HealthProbe = { ready: boolean; indexedBlock: number | null; headBlock: number | null; lagBlocks: number | null };

export type Part<T> = { ok: true; value: T } | { ok: false; error: string };

export type IngestionRow = { server: Address; batches: number; lines: number; lastBlock: bigint; lastTime: bigint };

export type PayerCheck = {
  account: Address;
  /** The encrypted balance, decrypted and checked against its EGCT (null: no balance yet). */
  balanceMicro: bigint | null;
  owedMicro: bigint;
  throughBlock: bigint;
  owedByAccount: { account: Address; amountMicro: bigint }[];
  cycles: LedgerSnapshot["cycles"];
};

export type OperatorView = {
  agent: Part<{ chain: AgentChain; status: AgentStatus }>;
  payer: Part<PayerCheck>;
  ingestion: Part<IngestionRow[]>;
  health: Part<HealthProbe>;
};

const part = <T>(p: Promise<T>): Promise<Part<T>> =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (e: unknown) => ({ ok: false as const, error: summarize(e).message }),
  );

async function payerCheck(indexer: IndexerClient, account: Address, sk: bigint): Promise<PayerCheck> {
  const history = decryptHistory(await indexer.earnings(account), sk);
  const token = history.tokens.find((t) => t.balanceMicro !== null);
  const ledger = new PayoutLedgerView({ indexer, status: indexer, operatorSk: async () => sk, payers: [account] });
  const snapshot = await ledger.snapshot();
  const owedByAccount = [...snapshot.pendingByAccount].map(([a, amountMicro]) => ({ account: a, amountMicro }));
  return {
    account,
    balanceMicro: token?.balanceMicro ?? null,
    owedMicro: owedByAccount.reduce((s, o) => s + o.amountMicro, 0n),
    throughBlock: snapshot.throughBlock,
    owedByAccount,
    cycles: snapshot.cycles,
  };
}

/** Committed batches per usage server, from the indexer's `usageCommitments` (public columns only). */
async function ingestion(indexer: IndexerClient): Promise<IngestionRow[]> {
  type Row = { server: Address; blockNumber: string; timestamp: string; lineCount: number | null };
  const rows = await indexer.all<Row>("usageCommitments", "server blockNumber timestamp lineCount", "blockNumber");
  const byServer = new Map<Address, IngestionRow>();
  for (const r of rows) {
    const server = getAddress(r.server);
    const s = byServer.get(server) ?? { server, batches: 0, lines: 0, lastBlock: 0n, lastTime: 0n };
    s.batches++;
    s.lines += r.lineCount ?? 0;
    if (BigInt(r.blockNumber) >= s.lastBlock) {
      s.lastBlock = BigInt(r.blockNumber);
      s.lastTime = BigInt(r.timestamp);
    }
    byServer.set(server, s);
  }
  return [...byServer.values()].sort((a, b) => (a.lastBlock === b.lastBlock ? 0 : a.lastBlock > b.lastBlock ? -1 : 1));
}

async function health(apiUrl: string): Promise<HealthProbe> {
  const res = await fetch(new URL("ops/health", apiUrl.endsWith("/") ? apiUrl : `${apiUrl}/`));
  if (!res.ok) throw new Error(`/ops/health answered HTTP ${res.status}`);
  return (await res.json()) as HealthProbe;
}

export async function loadOperatorView(args: { apiUrl: string; agentUrl: string; account: Address; sk: bigint }): Promise<OperatorView> {
  const indexer = new IndexerClient(args.apiUrl);
  const agent = new AgentClient(args.agentUrl);
  const [agentPart, payer, ingested, probe] = await Promise.all([
    part(Promise.all([agent.chain(), agent.status()]).then(([chain, status]) => ({ chain, status }))),
    part(payerCheck(indexer, args.account, args.sk)),
    part(ingestion(indexer)),
    part(health(args.apiUrl)),
  ]);
  return { agent: agentPart, payer, ingestion: ingested, health: probe };
}

/** The agent's status now (polled while a cycle runs). */
export const agentStatus = (agentUrl: string): Promise<AgentStatus> => new AgentClient(agentUrl).status();

/**
 * Asks the agent for a cycle now, as `distribute` does: the operator's wallet signs the EIP-712
 * Distribute request for the agent's chain and id, valid for five minutes. Returns the request id.
 */
export async function requestCycle(agentUrl: string, signer: Signer): Promise<Hex> {
  const agent = new AgentClient(agentUrl);
  const { chainId, operator, agentId } = await agent.chain();
  if (!isAddressEqual(operator, signer.address))
    throw new Error(`the agent takes requests signed by its operator ${operator}, not by ${signer.address}`);
  const requestId = bytesToHex(crypto.getRandomValues(new Uint8Array(32)));
  const deadline = BigInt(Math.floor(Date.now() / 1000) + 300);
  const signature = await signer.signTypedData(distributeTypedData(requestId, deadline, chainId, agentId));
  await agent.distribute({ requestId, deadline: deadline.toString(), signature });
  return requestId;
}
