import { readFileSync } from "node:fs";
import { type Address, getAddress, type Hex, type PublicClient } from "viem";
import { type PrivateKeyAccount, privateKeyToAccount } from "viem/accounts";
import { type DeploymentManifest, manifestPath, readManifest } from "../deployment/manifest.js";
import { deriveKeyFromWallet, validatePrivateKey } from "../eerc/keys.js";
import { BaseError } from "../errors.js";
import { auditFromChain, balanceFromChain, openRpc, receivedFromChain, tokensFromChain, verifyAccountKey } from "../history/chain.js";
import { assertAuditKey, assertKeyMatches, auditTotals, decryptHistory, decryptReceived } from "../history/decrypt.js";
import { HistoryError } from "../history/errors.js";
import type { AuditReport } from "../history/types.js";
import {
  type CommittedBatch,
  checkRecords,
  decryptProviderUsage,
  type ProviderRef,
  parseRecordsFile,
  providersFromChain,
  type RecordGroup,
  type RecordsCheck,
  usageBatchesFromChain,
} from "../history/usage.js";
import { IndexerClient } from "../indexer-client/client.js";
import { USDC_DECIMALS } from "../money/usdc.js";
import { type CliIo, type Command, CommandLineError, InvalidKeyError, type Values } from "./args.js";
import { type ChainHistory, renderAudit, renderChainHistory, renderHistory, renderUsage, toJson } from "./output.js";

function readKeyFile(path: string, flag: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (e) {
    throw new CommandLineError(`cannot read ${flag} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The account, its eERC private key and, when the wallet key was given, the wallet account (to send and sign). */
export type Identity = { address: Address; sk: bigint; account?: PrivateKeyAccount };

/** The account and its eERC private key, from the wallet key (derived) or an eERC key file. */
export async function resolveIdentity(values: Values, env: CliIo["env"]): Promise<Identity> {
  if (values["eerc-key-file"] !== undefined) {
    const text = readKeyFile(values["eerc-key-file"], "--eerc-key-file");
    if (!/^(0x)?[0-9a-fA-F]{1,64}$/.test(text)) throw new InvalidKeyError("the --eerc-key-file content is not a hex eERC private key");
    const sk = BigInt(text.startsWith("0x") ? text : `0x${text}`);
    try {
      validatePrivateKey(sk);
    } catch {
      throw new InvalidKeyError("the --eerc-key-file key is not a BabyJubJub private key (must be in [1, l))");
    }
    return { address: getAddress(values.address!), sk };
  }
  let text: string;
  let what: string;
  if (values["key-file"] !== undefined) {
    text = readKeyFile(values["key-file"], "--key-file");
    what = "the --key-file content";
  } else if (env.PRIVATE_KEY !== undefined && env.PRIVATE_KEY !== "") {
    text = env.PRIVATE_KEY.trim();
    what = "PRIVATE_KEY";
  } else {
    throw new CommandLineError("no key: set PRIVATE_KEY, or pass --key-file PATH or --eerc-key-file PATH --address ADDRESS");
  }
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(text)) throw new InvalidKeyError(`${what} is not a 32-byte hex private key`);
  let account: PrivateKeyAccount;
  try {
    account = privateKeyToAccount((text.startsWith("0x") ? text : `0x${text}`) as Hex);
  } catch {
    throw new InvalidKeyError(`${what} is not a valid secp256k1 private key`);
  }
  return { address: account.address, sk: await deriveKeyFromWallet(account), account };
}

/** The wallet account, for commands that send a transaction or sign a request. */
export function walletOf(id: Identity, command: string): PrivateKeyAccount {
  if (!id.account)
    throw new CommandLineError(`${command} sends a transaction: give the wallet key (PRIVATE_KEY or --key-file), not --eerc-key-file`);
  return id.account;
}

/** A manifest that names no contract on this chain: written for another chain or an earlier one. */
export class StaleManifestError extends BaseError {
  readonly code = "STALE_MANIFEST";
}

/**
 * The manifest, checked against the chain behind `--rpc`: the chain id, and code at the eERC and
 * Registrar addresses (a manifest left from an earlier anvil would otherwise answer with "returned no data").
 */
export async function openDeployment(cmd: Command): Promise<{ manifest: DeploymentManifest; url: string; publicClient: PublicClient }> {
  const src = rpcSource(cmd);
  const manifest = loadManifest(src.manifest);
  const publicClient = await openRpc(src.url, { expectedChainId: manifest.chainId });
  for (const [name, address] of [
    ["EncryptedERC", manifest.contracts.encryptedERC],
    ["Registrar", manifest.contracts.registrar],
  ] as const) {
    const code = await publicClient.getCode({ address });
    if (!code || code === "0x")
      throw new StaleManifestError(
        `the manifest ${src.manifest ?? manifestPath()} names ${name} ${address}, but chain ${manifest.chainId} at ${src.url} has no contract there: ` +
          "it was written for an earlier deployment; pass --manifest with this chain's, or deploy with npm run deploy",
      );
  }
  return { manifest, url: src.url, publicClient };
}

export function rpcSource(cmd: Command): { url: string; manifest?: string } {
  if (cmd.source.kind !== "rpc") throw new CommandLineError(`${cmd.name} needs --rpc URL here`);
  return cmd.source;
}

export function loadManifest(path: string | undefined): DeploymentManifest {
  const m = readManifest(path ?? manifestPath());
  if (m.decimals !== USDC_DECIMALS) {
    throw new Error(`the eERC in ${path ?? manifestPath()} has ${m.decimals} decimals; amounts are micro-USDC only with ${USDC_DECIMALS}`);
  }
  return m;
}

export async function runHistory(cmd: Command, id: Identity, io: CliIo): Promise<void> {
  if (cmd.source.kind === "api") {
    const client = new IndexerClient(cmd.source.url);
    const response = await client.earnings(id.address, { tokenId: cmd.tokenId });
    const history = decryptHistory(response, id.sk);
    if (cmd.tokenId !== undefined) history.tokens = history.tokens.filter((t) => t.tokenId === cmd.tokenId);
    io.stdout(cmd.json ? toJson({ source: "api", ...history }) : renderHistory(history, `api ${cmd.source.url}`));
    return;
  }
  const { manifest: m, publicClient } = await openDeployment(cmd);
  const { encryptedERC, registrar } = m.contracts;
  const publicKey = await verifyAccountKey(publicClient, registrar, id.address, id.sk);
  const all = await tokensFromChain(publicClient, encryptedERC);
  const tokens =
    cmd.tokenId === undefined ? all : [all.find((t) => t.tokenId === cmd.tokenId) ?? { tokenId: cmd.tokenId, tokenAddress: null }];
  const { records, unresolved } = await receivedFromChain({
    rpcUrl: cmd.source.url,
    publicClient,
    encryptedERC,
    account: id.address,
    fromBlock: BigInt(m.startBlock),
    tokenId: cmd.tokenId,
  });
  const decrypted = decryptReceived(records, id.sk);
  const received = decrypted.received;
  const history: ChainHistory = { account: id.address, publicKey, tokens: [], unresolved: [...unresolved, ...decrypted.unresolved] };
  for (const t of tokens) {
    const b = await balanceFromChain({
      rpcUrl: cmd.source.url,
      publicClient,
      encryptedERC,
      registrar,
      account: id.address,
      tokenId: t.tokenId,
      sk: id.sk,
    });
    const mine = received.filter((r) => r.tokenId === t.tokenId);
    history.tokens.push({
      tokenId: t.tokenId,
      tokenAddress: t.tokenAddress,
      balanceMicro: b.balanceMicro,
      nonce: b.nonce,
      pendingCredits: b.pendingCredits,
      received: mine,
      receivedTotalMicro: mine.reduce((s, r) => s + r.amountMicro, 0n),
    });
  }
  const source = `rpc ${cmd.source.url} (chain ${m.chainId}, EncryptedERC ${encryptedERC})`;
  io.stdout(cmd.json ? toJson({ source: "rpc", ...history }) : renderChainHistory(history, source));
}

export async function runAudit(cmd: Command, id: Identity, io: CliIo): Promise<void> {
  let report: AuditReport;
  let source: string;
  if (cmd.source.kind === "api") {
    const client = new IndexerClient(cmd.source.url);
    const response = await client.auditTotals({ period: cmd.period });
    await assertAuditKey(response, id.address, id.sk, async () => (await client.earnings(id.address)).publicKey);
    report = auditTotals(response, id.sk);
    source = `api ${cmd.source.url}`;
  } else {
    const { manifest: m, publicClient } = await openDeployment(cmd);
    await verifyAccountKey(publicClient, m.contracts.registrar, id.address, id.sk);
    report = await auditFromChain({
      rpcUrl: cmd.source.url,
      publicClient,
      encryptedERC: m.contracts.encryptedERC,
      fromBlock: BigInt(m.startBlock),
      period: cmd.period,
      sk: id.sk,
    });
    source = `rpc ${cmd.source.url} (chain ${m.chainId}, EncryptedERC ${m.contracts.encryptedERC}, from block ${m.startBlock})`;
  }
  io.stdout(
    cmd.json
      ? toJson({ source: cmd.source.kind, account: id.address, period: cmd.period, ...report })
      : renderAudit(report, { account: id.address, period: cmd.period, source }),
  );
}

/** Call records that do not match what the chain committed; the details are in the report printed before. */
export class RecordsMismatchError extends HistoryError {
  readonly code = "RECORDS_MISMATCH";
  constructor(readonly check: RecordsCheck) {
    super(`${check.mismatches.length} record check(s) failed; first: ${check.mismatches[0]?.message ?? "?"}`);
  }
}

function readRecords(path: string): RecordGroup[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new CommandLineError(`cannot read --records ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseRecordsFile(bytes, path);
}

/**
 * The provider's usage lines, decrypted from the indexer's GraphQL or from the UsageLedger's logs,
 * per batch and in total; with `--records`, the records checked against the committed batches.
 */
export async function runUsage(cmd: Command, id: Identity, io: CliIo): Promise<void> {
  const groups = cmd.records !== undefined ? readRecords(cmd.records) : undefined;
  let source: string;
  let providers: ProviderRef[];
  let batches: CommittedBatch[];
  if (cmd.source.kind === "api") {
    const client = new IndexerClient(cmd.source.url);
    assertKeyMatches(id.address, await client.registeredKey(id.address), id.sk);
    [providers, batches] = await Promise.all([client.providers(), client.usageBatches()]);
    source = `api ${client.graphqlUrl}`;
  } else {
    const { manifest: m, publicClient } = await openDeployment(cmd);
    await verifyAccountKey(publicClient, m.contracts.registrar, id.address, id.sk);
    const toBlock = await publicClient.getBlockNumber();
    const range = { rpcUrl: cmd.source.url, publicClient, fromBlock: BigInt(m.startBlock), toBlock };
    [providers, batches] = await Promise.all([
      providersFromChain({ ...range, providerRegistry: m.contracts.providerRegistry }),
      usageBatchesFromChain({ ...range, usageLedger: m.contracts.usageLedger }),
    ]);
    source = `rpc ${cmd.source.url} (chain ${m.chainId}, UsageLedger ${m.contracts.usageLedger}, blocks ${m.startBlock}–${toBlock})`;
  }
  const report = decryptProviderUsage({ account: id.address, sk: id.sk, providers, batches });
  const check = groups ? checkRecords({ report, batches, groups }) : undefined;
  io.stdout(
    cmd.json
      ? toJson({ source: cmd.source.kind, ...report, records: check ? { path: cmd.records, ...check } : undefined })
      : renderUsage(report, { source, records: check ? { path: cmd.records!, check } : undefined }),
  );
  if (check && !check.ok) throw new RecordsMismatchError(check);
}
