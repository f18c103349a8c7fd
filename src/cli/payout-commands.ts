import { bytesToHex, getAddress, type Hex } from "viem";
import { connectChain } from "../chain/clients.js";
import { provingArtifactsOf } from "../deployment/manifest.js";
import { EercClient } from "../eerc/client.js";
import { checkProvingArtifacts, detectEerc } from "../eerc/deployment-check.js";
import { Prover } from "../eerc/prover.js";
import { provingKeyChecksFromEnv } from "../eerc/proving-key-checks.js";
import { BaseError } from "../errors.js";
import { verifyAccountKey } from "../history/chain.js";
import { ApiHttpError, ApiUnreachableError } from "../http/errors.js";
import { IndexerClient } from "../indexer-client/client.js";
import { formatUsdc } from "../money/usdc.js";
import { AgentClient } from "../payout/client.js";
import {
  cycleStatusText,
  MONEY_FLOW_COLUMNS,
  moneyFlowCells,
  payoutStatusText,
  type Reconciliation,
  reconcile,
  reconciliationHeadline,
} from "../payout/reconcile.js";
import type { AgentStatus } from "../payout/schemas.js";
import { distributeTypedData } from "../payout/server.js";
import { type CliIo, type Command, CommandLineError } from "./args.js";
import { type Identity, openDeployment, walletOf } from "./commands.js";
import { table, toJson } from "./output.js";

/** Thrown after the report is printed when a cycle does not reconcile (exit code 1). */
export class ReconciliationMismatchError extends BaseError {
  readonly code = "RECONCILIATION_MISMATCH";
}

/** A provider claims part of its encrypted balance to its wallet, with nothing but an RPC endpoint. */
export async function runWithdraw(cmd: Command, id: Identity, io: CliIo): Promise<void> {
  const account = walletOf(id, "withdraw");
  const amount = cmd.amount!;
  const { manifest: m, url, publicClient } = await openDeployment(cmd);
  await verifyAccountKey(publicClient, m.contracts.registrar, id.address, id.sk);
  const chain = await connectChain(url);
  const prover = new Prover(provingArtifactsOf(m));
  try {
    const contracts = { encryptedERC: m.contracts.encryptedERC, registrar: m.contracts.registrar };
    await detectEerc(chain.publicClient, contracts.encryptedERC);
    await checkProvingArtifacts({
      publicClient: chain.publicClient,
      prover,
      contracts,
      circuits: ["withdraw"],
      record: provingKeyChecksFromEnv(),
    });
    const client = await EercClient.connect({
      publicClient: chain.publicClient,
      wallet: chain.walletFor(account),
      contracts: { encryptedERC: m.contracts.encryptedERC, registrar: m.contracts.registrar },
      prover,
    });
    const tokenId = await client.tokenId(m.contracts.token);
    const before = await client.balance(tokenId);
    // The balance is the caller's own, decrypted here: it can be named to them.
    if (amount > before)
      throw new Error(
        `your balance is ${formatUsdc(before)} USDC, less than the ${formatUsdc(amount)} USDC asked: withdraw at most ${formatUsdc(before)}`,
      );
    const receipt = await client.withdraw({ amount, tokenId });
    const after = await client.balance(tokenId);
    const out = {
      account: id.address,
      token: m.contracts.token,
      amountMicro: amount,
      txHash: receipt.transactionHash,
      blockNumber: receipt.blockNumber,
      balanceBeforeMicro: before,
      balanceAfterMicro: after,
    };
    io.stdout(
      cmd.json
        ? toJson(out)
        : [
            `withdrew ${formatUsdc(amount)} USDC to ${id.address} (tx ${receipt.transactionHash}, block ${receipt.blockNumber})`,
            `encrypted balance: ${formatUsdc(before)} → ${formatUsdc(after)} USDC`,
          ].join("\n"),
    );
  } finally {
    await prover.close();
  }
}

export function renderReconciliation(r: Reconciliation): string {
  const lines = [
    `reconciliation through indexed block ${r.indexedBlock}: ${reconciliationHeadline(r)}`,
    `payers: ${r.payers.length > 0 ? r.payers.join(", ") : "none"}`,
    `pending-queue cap: ${r.pendingCap === null ? "none known (a provider passed over because its queue was full shows as short)" : String(r.pendingCap)}`,
    "",
  ];
  const cycleRows = r.cycles.map((c) => [
    String(c.cycle),
    String(c.throughBlock),
    formatUsdc(c.poolMicro),
    formatUsdc(c.carriedInMicro),
    formatUsdc(c.splitMicro),
    formatUsdc(c.carriedOutMicro),
    formatUsdc(c.owedMicro),
    formatUsdc(c.paidMicro),
    String(c.transfers),
    cycleStatusText(c),
  ]);
  lines.push(
    ...table(
      ["cycle", "through block", "pool USDC", "carried in", "pool split", "carried out", "owed USDC", "paid USDC", "transfers", "status"],
      cycleRows,
      new Set([0, 1, 2, 3, 4, 5, 6, 7, 8]),
    ),
  );
  lines.push("", `total paid: ${formatUsdc(r.totalMicro)} USDC`);
  // Pool fees + usage billed + levy + carried in + deferred in = paid + platform fee + carried out + deferred out,
  // per cycle; deposits are shown, not counted.
  lines.push("", "money flow (USDC):");
  lines.push(
    ...table(
      ["cycle", ...MONEY_FLOW_COLUMNS],
      [...r.cycles.map((c) => [String(c.cycle), ...moneyFlowCells(c.moneyFlow)]), ["total", ...moneyFlowCells(r.moneyFlow)]],
      new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
    ),
  );
  const deferred = r.cycles.flatMap((c) => c.rows.filter((row) => row.status === "deferred"));
  if (deferred.length > 0) {
    lines.push("", "deferred (nothing paid while the provider's pending queue was full; owed, carried to a later cycle):");
    lines.push(
      ...table(
        ["cycle", "provider", "owed USDC", "payout account", "pending PCTs", "at block", "paid in cycle"],
        deferred.map((d) => [
          String(d.cycle),
          d.namespace ?? d.providerId,
          formatUsdc(d.owedMicro),
          d.queue!.account,
          `${d.queue!.pendingPCTs} of ${r.pendingCap}`,
          String(d.queue!.blockNumber),
          d.settledInCycle === null ? "not yet" : String(d.settledInCycle),
        ]),
        new Set([0, 2, 5]),
      ),
    );
  }
  if (r.alerts.length > 0) {
    lines.push("", "usage lines settlement ignored or capped (ALERT):");
    lines.push(
      ...table(
        ["block", "server", "provider", "why", "billable calls", "counted"],
        r.alerts.map((a) => [String(a.blockNumber), a.server, a.providerId, a.reason, String(a.billableCalls), String(a.admittedCalls)]),
        new Set([0, 4, 5]),
      ),
    );
  }
  if (r.unattributed.length > 0) {
    lines.push("", "transfers from payers that are not accountable payouts:");
    lines.push(
      ...table(
        ["block", "transaction", "from", "to", "why"],
        r.unattributed.map((t) => [String(t.blockNumber), t.txHash, t.from, t.to, t.reason]),
        new Set([0]),
      ),
    );
  }
  const bad = r.cycles.flatMap((c) => c.rows.filter((row) => !row.ok));
  if (bad.length > 0) {
    lines.push("", "mismatches:");
    lines.push(
      ...table(
        ["cycle", "provider", "owed USDC", "paid USDC", "transfers", "status"],
        bad.map((b) => [
          String(b.cycle),
          b.namespace ?? b.providerId,
          formatUsdc(b.owedMicro),
          formatUsdc(b.paidMicro),
          String(b.transfers),
          payoutStatusText(b, r.pendingCap),
        ]),
        new Set([0, 2, 3, 4]),
      ),
    );
    if (r.pendingCap === null && bad.some((b) => b.status === "short" && b.queue !== null && b.queue.pendingPCTs > 0n))
      lines.push(
        "",
        "a provider paid nothing had pending PCTs: if the eERC caps pending queues, give --pending-cap N (its MAX_PENDING_AMOUNT_PCTS()) to check for a deferral",
      );
  }
  return lines.join("\n");
}

/** The auditor's reconciliation of every payout cycle; exit 1 on any mismatch. */
export async function runReconcile(cmd: Command, id: Identity, io: CliIo): Promise<void> {
  if (cmd.source.kind !== "api") throw new CommandLineError("reconcile needs --api URL");
  const indexer = new IndexerClient(cmd.source.url);
  const r = await reconcile({
    indexer,
    auditorSk: id.sk,
    operatorPk: await indexer.registeredKey(getAddress(cmd.values.operator!)),
    asserted: cmd.settlement,
    payers: cmd.values.payers ? cmd.values.payers.split(",").map((a) => getAddress(a.trim())) : "any",
    pendingCap: cmd.pendingCap ?? null,
  });
  io.stdout(cmd.json ? toJson(r) : renderReconciliation(r));
  if (!r.ok) {
    const why = [
      ...(r.unattributed.length > 0 ? [`${r.unattributed.length} payer transfer(s) are not accountable payouts`] : []),
      ...(r.cycles.some((c) => !c.ok) ? [`${r.cycles.filter((c) => !c.ok).length} cycle(s) do not reconcile`] : []),
    ];
    throw new ReconciliationMismatchError(why.join("; "));
  }
}

function bar(done: number, total: number, width = 30): string {
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}`;
}

/** How long `distribute` keeps polling an agent that stopped answering before it gives up (the cycle itself goes on). */
const STATUS_RETRY_MS = 15_000;

/** The operator asks the agent for a cycle now and follows it to the end with a progress bar. */
export async function runDistribute(cmd: Command, id: Identity, io: CliIo & { progress?: (line: string) => void }): Promise<void> {
  const account = walletOf(id, "distribute");
  if (cmd.source.kind !== "agent") throw new CommandLineError("distribute needs --agent URL");
  const agent = new AgentClient(cmd.source.url);
  const { chainId, operator, agentId } = await agent.chain();
  if (operator.toLowerCase() !== account.address.toLowerCase())
    throw new Error(`the agent takes requests signed by its operator ${operator}, not by ${account.address}`);
  const requestId = bytesToHex(crypto.getRandomValues(new Uint8Array(32))) as Hex;
  const deadline = BigInt(Math.floor(Date.now() / 1000) + 300);
  const signature = await account.signTypedData(distributeTypedData(requestId, deadline, chainId, agentId));
  await agent.distribute({ requestId, deadline: deadline.toString(), signature }).catch((e: unknown) => {
    throw e instanceof ApiHttpError ? new Error(`the agent refused the request (${e.status}): ${e.serverMessage}`) : e;
  });
  const progress = io.progress ?? ((line: string) => io.stderr(line));
  let shown = "";
  let unreachableSince: number | null = null;
  for (;;) {
    await new Promise((r) => setTimeout(r, 250));
    let status: AgentStatus;
    try {
      status = await agent.status();
      unreachableSince = null;
    } catch (e) {
      // The cycle runs on whether or not we watch: a dropped poll is retried for a while.
      if (!(e instanceof ApiUnreachableError)) throw e;
      unreachableSince ??= Date.now();
      if (Date.now() - unreachableSince > STATUS_RETRY_MS) throw e;
      continue;
    }
    if (status.state === "running" && status.progress) {
      const p = status.progress;
      const line = `cycle ${p.cycle}: proved ${bar(p.proved, p.total)}  paid ${p.paid}/${p.total}`;
      if (line !== shown) progress(line);
      shown = line;
      continue;
    }
    if (status.state === "idle" && status.last) {
      const last = status.last;
      if (cmd.json) io.stdout(toJson(last));
      else if (last.status === "paid")
        io.stdout(`cycle ${last.cycle}: ${last.transfers} transfer(s) paid in ${last.seconds} s, through block ${last.throughBlock}`);
      else if (last.status === "nothing_owed") io.stdout(`nothing owed through block ${last.throughBlock}`);
      if (last.status === "failed") throw new Error(`the cycle failed: ${last.message}`);
      return;
    }
  }
}
