import { type Address, getAddress, isAddressEqual, type PublicClient } from "viem";
import { EncryptedERCAbi } from "../../abis/EncryptedERCAbi.js";
import { RegistrarAbi } from "../../abis/RegistrarAbi.js";
import { UsageLedgerAbi } from "../../abis/UsageLedgerAbi.js";
import { type DeploymentManifest, manifestPath, provingArtifactsOf } from "../deployment/manifest.js";
import { decryptBalance } from "../eerc/balance.js";
import { readBalance } from "../eerc/balance-read.js";
import { CONVERTER_CIRCUITS, checkProvingArtifacts, STANDALONE_CIRCUITS } from "../eerc/deployment-check.js";
import { Prover } from "../eerc/prover.js";
import { BaseError, summarize } from "../errors.js";
import { openRpc } from "../history/chain.js";
import { IndexerClient } from "../indexer-client/client.js";
import { formatUsdc } from "../money/usdc.js";
import { AgentClient } from "../payout/client.js";
import { PayoutLedgerView } from "../payout/ledger-view.js";
import type { CliIo, Command } from "./args.js";
import { type Identity, loadManifest } from "./commands.js";
import { table, toJson } from "./output.js";

export type CheckStatus = "ok" | "fail" | "skip";
export type Check = { check: string; status: CheckStatus; detail: string; fix?: string };

/** Thrown after the report when a check failed (exit code 1). */
export class DoctorFailedError extends BaseError {
  readonly code = "DOCTOR_FAILED";
}

/** Blocks the indexer may trail the chain's head before it counts as lagging. */
export const MAX_INDEXER_LAG_BLOCKS = 20n;

const hasCode = async (client: PublicClient, address: Address) => {
  const code = await client.getCode({ address });
  return code !== undefined && code !== "0x";
};

/**
 * Checks a deployment from the outside, the way its users meet it: one line per check, each
 * failure with its fix. Later checks that need what an earlier one found are skipped, not failed.
 */
export async function doctor(cmd: Command, id: Identity | undefined): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (check: string, status: CheckStatus, detail: string, fix?: string) => checks.push({ check, status, detail, fix });
  const skip = (check: string, why: string, fix?: string) => add(check, "skip", why, fix);
  const src = cmd.source as { url: string; manifest?: string };
  const path = src.manifest ?? manifestPath();

  let m: DeploymentManifest;
  try {
    m = loadManifest(src.manifest);
    add("manifest", "ok", `${path}: ${m.network}, chain ${m.chainId}, from block ${m.startBlock}`);
  } catch (e) {
    add("manifest", "fail", summarize(e).message, "deploy with npm run deploy, or pass --manifest PATH");
    return checks;
  }

  let client: PublicClient;
  try {
    client = await openRpc(src.url, { expectedChainId: m.chainId });
    add("chain", "ok", `chain ${m.chainId} at ${src.url}, as the manifest says`);
  } catch (e) {
    add("chain", "fail", summarize(e).message, "check --rpc, or pass the manifest of the chain it serves");
    return checks;
  }

  const named: [string, Address][] = [
    ["EncryptedERC", m.contracts.encryptedERC],
    ["Registrar", m.contracts.registrar],
    ["token", m.contracts.token],
    ["ProviderRegistry", m.contracts.providerRegistry],
    ["UsageLedger", m.contracts.usageLedger],
  ];
  const missing: string[] = [];
  for (const [name, address] of named) if (!(await hasCode(client, address))) missing.push(`${name} ${address}`);
  if (missing.length > 0) {
    add(
      "contracts",
      "fail",
      `no code at ${missing.join(", ")}`,
      "the manifest is from another deployment: pass this chain's --manifest, or npm run deploy",
    );
    return checks;
  }
  add("contracts", "ok", `code at all ${named.length} addresses`);

  const auditorSet = await client.readContract({
    address: m.contracts.encryptedERC,
    abi: EncryptedERCAbi,
    functionName: "isAuditorKeySet",
  });
  if (!auditorSet)
    add("auditor", "fail", "the eERC has no auditor key", "the eERC owner sets it (setAuditorPublicKey) after the auditor registers");
  else {
    const auditor = await client.readContract({ address: m.contracts.encryptedERC, abi: EncryptedERCAbi, functionName: "auditor" });
    if (isAddressEqual(auditor, m.auditor)) add("auditor", "ok", `auditor ${auditor}, key set`);
    else
      add(
        "auditor",
        "fail",
        `the eERC's auditor is ${auditor}, the manifest says ${m.auditor}`,
        "update the manifest's auditor (or redeploy)",
      );
  }

  const isConverter = await client.readContract({ address: m.contracts.encryptedERC, abi: EncryptedERCAbi, functionName: "isConverter" });
  const circuits = isConverter ? CONVERTER_CIRCUITS : STANDALONE_CIRCUITS;
  const prover = new Prover(provingArtifactsOf(m));
  try {
    await checkProvingArtifacts({ publicClient: client, prover, contracts: m.contracts, circuits });
    add("circuits", "ok", `${circuits.join(", ")}: a proof from each proving key verifies on the deployment's verifier`);
  } catch (e) {
    add(
      "circuits",
      "fail",
      summarize(e).message,
      "set CIRCUITS_DIR (or the manifest's circuits) to this deployment's artifacts; for this project's own eERC, npm run build:circuits",
    );
  } finally {
    await prover.close();
  }

  const operator = cmd.values.operator
    ? getAddress(cmd.values.operator)
    : await client.readContract({ address: m.contracts.usageLedger, abi: UsageLedgerAbi, functionName: "operator" });
  const registered = await client.readContract({
    address: m.contracts.registrar,
    abi: RegistrarAbi,
    functionName: "isUserRegistered",
    args: [operator],
  });
  if (registered) add("operator", "ok", `operator ${operator} is registered in the eERC`);
  else
    add(
      "operator",
      "fail",
      `operator ${operator} has no eERC registration`,
      'run "npm run cli -- register --rpc URL" with the operator\'s wallet key',
    );

  const head = await client.getBlockNumber();
  const api = cmd.values.api;
  if (api === undefined) skip("indexer", "no --api given", "pass --api URL to check the indexer");
  else {
    try {
      const blocks = await new IndexerClient(api).indexedBlocks();
      const indexed = BigInt(Math.min(...Object.values(blocks)));
      const lag = head > indexed ? head - indexed : 0n;
      if (lag <= MAX_INDEXER_LAG_BLOCKS) add("indexer", "ok", `indexed through block ${indexed}, ${lag} behind the head ${head}`);
      else
        add(
          "indexer",
          "fail",
          `indexed through block ${indexed}, ${lag} blocks behind the head ${head}`,
          "check the indexer's log and its RPC_URL",
        );
    } catch (e) {
      add("indexer", "fail", summarize(e).message, "start it with npm run indexer, or fix --api");
    }
  }

  const agent = cmd.values.agent;
  if (agent === undefined) skip("agent", "no --agent given", "pass --agent URL to check the payout agent");
  else {
    try {
      const client = new AgentClient(agent);
      const health = await client.health();
      const chain = await client.chain();
      if (chain.chainId !== m.chainId)
        add("agent", "fail", `the agent pays on chain ${chain.chainId}, not ${m.chainId}`, "point the agent's RPC_URL at this chain");
      else if (!isAddressEqual(chain.operator, operator))
        add(
          "agent",
          "fail",
          `the agent's operator is ${chain.operator}, not ${operator}`,
          "set the agent's OPERATOR_PRIVATE_KEY to the operator's key",
        );
      else add("agent", "ok", `reachable, ${health.state}, operator ${chain.operator}`);
    } catch (e) {
      add("agent", "fail", summarize(e).message, "start it with npm run agent, or fix --agent");
    }
  }

  if (!id?.account)
    skip("payer", "no wallet key given", "give the payer's wallet key (PRIVATE_KEY) to compare its balance with what is owed next");
  else if (api === undefined) skip("payer", "no --api given", "pass --api URL to read what is owed next");
  else {
    try {
      const payer = id.account.address;
      const tokenId = await client.readContract({
        address: m.contracts.encryptedERC,
        abi: EncryptedERCAbi,
        functionName: "tokenIds",
        args: [m.contracts.token],
      });
      const view = await readBalance(client, { encryptedERC: m.contracts.encryptedERC, user: payer, tokenId });
      const balance = decryptBalance(view, id.sk);
      const ledger = new PayoutLedgerView({
        indexer: new IndexerClient(api),
        status: new IndexerClient(api),
        operatorSk: async () => id.sk,
        payers: [payer],
      });
      const snapshot = await ledger.snapshot();
      const owed = [...snapshot.pendingByAccount.values()].reduce((s, a) => s + a, 0n);
      if (balance >= owed)
        add(
          "payer",
          "ok",
          `${payer} holds ${formatUsdc(balance)} USDC encrypted; ${formatUsdc(owed)} USDC is owed next (through block ${snapshot.throughBlock})`,
        );
      else
        add(
          "payer",
          "fail",
          `${payer} holds ${formatUsdc(balance)} USDC encrypted, less than the ${formatUsdc(owed)} USDC owed next`,
          `deposit at least ${formatUsdc(owed - balance)} USDC: npm run cli -- payer fund --rpc URL --amount ${formatUsdc(owed - balance)}`,
        );
    } catch (e) {
      add("payer", "fail", summarize(e).message, "check --api and that the key is the operator's (the payer's) wallet key");
    }
  }
  return checks;
}

export function renderChecks(checks: readonly Check[]): string {
  const rows = checks.map((c) => [
    c.status === "ok" ? "ok" : c.status === "fail" ? "FAIL" : "skip",
    c.check,
    c.fix ? `${c.detail}; fix: ${c.fix}` : c.detail,
  ]);
  const failed = checks.filter((c) => c.status === "fail").length;
  return [...table(["", "check", "detail"], rows, new Set()), "", failed === 0 ? "every check passed" : `${failed} check(s) failed`].join(
    "\n",
  );
}

export async function runDoctor(cmd: Command, id: Identity | undefined, io: CliIo): Promise<void> {
  const checks = await doctor(cmd, id);
  io.stdout(cmd.json ? toJson({ ok: checks.every((c) => c.status !== "fail"), checks }) : renderChecks(checks));
  const failed = checks.filter((c) => c.status === "fail");
  if (failed.length > 0) throw new DoctorFailedError(`${failed.map((c) => c.check).join(", ")} failed`);
}
