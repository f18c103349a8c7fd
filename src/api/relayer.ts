import {
  type Address,
  type Chain,
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
  defineChain,
  type Hex,
  http,
  InsufficientFundsError,
  NonceTooHighError,
  NonceTooLowError,
  type PrivateKeyAccount,
  type PublicClient,
  recoverTypedDataAddress,
  BaseError as ViemBaseError,
  type WalletClient,
} from "viem";
import { LOCAL_CHAIN_ID } from "../chain/local.js";
import { BaseError, summarize } from "../errors.js";
import { type ApiErrorStatus, ApiInputError } from "../http/input.js";
import { type Logger, toLogger } from "../log.js";
import { apiLogger } from "./log.js";

/** anvil's well-known account #8: the relayer on a local chain when RELAYER_PRIVATE_KEY is unset. */

/** The API cannot serve a write now: no relayer (503) or the chain did not answer (502). */
export class ApiServiceError extends BaseError {
  readonly code = "SERVICE_UNAVAILABLE";
  constructor(
    readonly status: 502 | 503,
    message: string,
  ) {
    super(message);
  }
}

export function chainOf(chainId: number, rpcUrl: string): Chain {
  return defineChain({
    id: chainId,
    name: `chain-${chainId}`,
    nativeCurrency: { name: "Native", symbol: "NATIVE", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
}

export function rpcClients(chainId: number, rpcUrl: string) {
  const chain = chainOf(chainId, rpcUrl);
  const transport = http(rpcUrl, { batch: false, retryCount: 1 });
  const pollingInterval = chainId === LOCAL_CHAIN_ID ? 50 : 1_000;
  return {
    chain,
    publicClient: createPublicClient({ chain, transport, pollingInterval }) as PublicClient,
    walletClient: (account: PrivateKeyAccount) => createWalletClient({ chain, transport, account, pollingInterval }),
  };
}

/** A relayed write as the routes hand it over: the call, never its decoded arguments. */
export type RelayedCall = { to: Address; data: Hex; gas: bigint };

type Fees = { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint };

/** A sent transaction not yet known to be mined. */
type Pending = { nonce: number; call: RelayedCall; hash: Hex; fees: Fees; sentAt: number };

export type RelayerOptions = {
  /** How long a sent transaction may wait for its receipt before it is replaced (RELAYER_RECEIPT_TIMEOUT_S). */
  receiptTimeoutMs?: number;
};

/** A replacement must raise both fees by at least 10% for a node to take it; this adds a little more. */
export const bumpFees = (fees: Fees): Fees => ({
  maxFeePerGas: fees.maxFeePerGas + fees.maxFeePerGas / 10n + 1n,
  maxPriorityFeePerGas: fees.maxPriorityFeePerGas + fees.maxPriorityFeePerGas / 10n + 1n,
});

const maxFees = (a: Fees, b: Fees): Fees => ({
  maxFeePerGas: a.maxFeePerGas > b.maxFeePerGas ? a.maxFeePerGas : b.maxFeePerGas,
  maxPriorityFeePerGas: a.maxPriorityFeePerGas > b.maxPriorityFeePerGas ? a.maxPriorityFeePerGas : b.maxPriorityFeePerGas,
});

/**
 * Sends the relayer's transactions one at a time with locally tracked nonces, so concurrent
 * requests never reuse a nonce. A send resolves once the node has accepted the transaction (its
 * hash is known), not when it is mined. After a failed send the nonce is read again from the
 * node's pending count; a nonce the node refuses (another process using the same key) is retried
 * once with a fresh one.
 *
 * Accepted is not mined: a node may drop a transaction, or leave it unmined when the base fee
 * rises above its fee cap, and every later nonce then waits behind it. So each sent transaction
 * stays pending until the chain's mined count ("latest") passes its nonce. One that has waited
 * `receiptTimeoutMs` is sent again with the same nonce and both fees raised by more than 10% (or
 * to the current estimate, if higher): a dropped one fills its gap, a stuck one is replaced; only
 * one transaction per nonce can be mined, so the write lands once. A transaction behind a gap is
 * dropped-and-resent only if the node has lost it too.
 */
export class Relayer {
  readonly address: Address;
  private readonly wallet: WalletClient;
  private tail: Promise<unknown> = Promise.resolve();
  private nextNonce: number | undefined;
  private readonly log: Logger;
  private readonly pending = new Map<number, Pending>();
  private readonly receiptTimeoutMs: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly account: PrivateKeyAccount,
    readonly publicClient: PublicClient,
    walletClient: (account: PrivateKeyAccount) => WalletClient,
    private readonly chain: Chain,
    /** Each send and replacement: nonce, target, transaction hashes and time; never the key or the calldata. */
    log: Logger = toLogger(apiLogger("relayer")),
    options: RelayerOptions = {},
  ) {
    this.address = account.address;
    this.wallet = walletClient(account);
    this.log = log;
    this.receiptTimeoutMs = options.receiptTimeoutMs ?? 60_000;
  }

  send(tx: RelayedCall): Promise<Hex> {
    return this.serially(() => this.sendNow(tx));
  }

  /** Nonces sent and not yet mined, with their current transaction hash. */
  pendingTransactions(): { nonce: number; hash: Hex }[] {
    return [...this.pending.values()].map(({ nonce, hash }) => ({ nonce, hash })).sort((a, b) => a.nonce - b.nonce);
  }

  /** Stops the receipt timer (the pending transactions are left as they are). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private serially<T>(run: () => Promise<T>): Promise<T> {
    const result = this.tail.then(run, run);
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async fees(): Promise<Fees> {
    const { maxFeePerGas, maxPriorityFeePerGas } = await this.publicClient.estimateFeesPerGas();
    return { maxFeePerGas, maxPriorityFeePerGas };
  }

  private async sendNow(tx: RelayedCall): Promise<Hex> {
    const started = performance.now();
    await this.repairStuck().catch((err) =>
      this.log.warn({ relayer: this.address, code: summarize(err).code }, "relayer pending check failed"),
    );
    for (let attempt = 0; ; attempt++) {
      this.nextNonce ??= await this.publicClient.getTransactionCount({ address: this.address, blockTag: "pending" });
      const nonce = this.nextNonce;
      try {
        const fees = await this.fees();
        const hash = await this.wallet.sendTransaction({ account: this.account, chain: this.chain, ...tx, nonce, ...fees });
        this.nextNonce += 1;
        this.pending.set(nonce, { nonce, call: tx, hash, fees, sentAt: Date.now() });
        this.schedule();
        this.log.info(
          { relayer: this.address, to: tx.to, nonce, gas: Number(tx.gas), txHash: hash, ms: Math.round(performance.now() - started) },
          "relayed transaction sent",
        );
        return hash;
      } catch (err) {
        this.nextNonce = undefined;
        const nonceRefused =
          err instanceof ViemBaseError && err.walk((e) => e instanceof NonceTooLowError || e instanceof NonceTooHighError);
        const { code } = summarize(err);
        if (attempt === 0 && nonceRefused) {
          this.log.warn({ relayer: this.address, to: tx.to, nonce, code }, "relayer nonce refused: retrying with the node's count");
          continue;
        }
        this.log.warn(
          { relayer: this.address, to: tx.to, nonce, code, ms: Math.round(performance.now() - started) },
          "relayed transaction not sent",
        );
        throw err;
      }
    }
  }

  /** Checks the pending transactions once `receiptTimeoutMs` after the oldest was sent. */
  private schedule(): void {
    if (this.timer || this.pending.size === 0) return;
    const oldest = Math.min(...[...this.pending.values()].map((p) => p.sentAt));
    const delay = Math.max(0, oldest + this.receiptTimeoutMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.serially(() => this.repairStuck()).then(
        () => this.schedule(),
        (err) => {
          this.log.warn({ relayer: this.address, code: summarize(err).code }, "relayer pending check failed");
          this.schedule();
        },
      );
    }, delay);
    this.timer.unref();
  }

  /**
   * Forgets the transactions the chain has mined, re-syncs the nonce with the node, and sends
   * again every transaction that has waited past the timeout and is either lost by the node or
   * first in line (the one every later nonce waits for).
   */
  private async repairStuck(): Promise<void> {
    if (this.pending.size === 0) return;
    const mined = await this.publicClient.getTransactionCount({ address: this.address, blockTag: "latest" });
    for (const nonce of this.pending.keys()) if (nonce < mined) this.pending.delete(nonce);
    const now = Date.now();
    const overdue = [...this.pending.values()].filter((p) => now - p.sentAt >= this.receiptTimeoutMs).sort((a, b) => a.nonce - b.nonce);
    if (overdue.length === 0) return;
    const known = await this.publicClient.getTransactionCount({ address: this.address, blockTag: "pending" });
    if (this.nextNonce !== undefined && known < this.nextNonce) {
      this.log.warn({ relayer: this.address, mined, pendingAtNode: known, nextNonce: this.nextNonce }, "relayer nonce gap: resending");
    }
    for (const p of overdue) {
      const lost = (await this.publicClient.getTransaction({ hash: p.hash }).catch(() => null)) === null;
      if (lost || p.nonce === mined) await this.resend(p, lost ? "dropped" : "not mined");
    }
  }

  private async resend(p: Pending, reason: "dropped" | "not mined"): Promise<void> {
    const fees = maxFees(bumpFees(p.fees), await this.fees());
    try {
      const hash = await this.wallet.sendTransaction({ account: this.account, chain: this.chain, ...p.call, nonce: p.nonce, ...fees });
      this.log.warn(
        { relayer: this.address, to: p.call.to, nonce: p.nonce, reason, txHash: p.hash, replacedBy: hash },
        "relayed transaction replaced",
      );
      this.pending.set(p.nonce, { ...p, hash, fees, sentAt: Date.now() });
    } catch (err) {
      const { code } = summarize(err);
      if (err instanceof ViemBaseError && err.walk((e) => e instanceof NonceTooLowError)) {
        // Mined in the meantime: the original (or an earlier replacement) landed.
        this.pending.delete(p.nonce);
        return;
      }
      // Retried at the next timeout, from the fees tried now.
      this.pending.set(p.nonce, { ...p, fees, sentAt: Date.now() });
      this.log.warn(
        { relayer: this.address, to: p.call.to, nonce: p.nonce, reason, txHash: p.hash, code },
        "relayed transaction not replaced",
      );
    }
  }
}

/**
 * Checks that `signature` over `typedData` is `expected`'s. An EOA must match by recovery; for a
 * contract account (ERC-1271) the contract decides, so the check is left to the call's simulation.
 */
export async function checkSigner(
  publicClient: PublicClient,
  expected: Address,
  typedData: Omit<Parameters<typeof recoverTypedDataAddress>[0], "signature">,
  signature: Hex,
  who: string,
): Promise<void> {
  let recovered: Address | undefined;
  try {
    recovered = await recoverTypedDataAddress({ ...typedData, signature } as Parameters<typeof recoverTypedDataAddress>[0]);
  } catch {
    recovered = undefined;
  }
  await checkRecoveredSigner(publicClient, expected, recovered, who);
}

/** `checkSigner` once the signature is recovered (undefined: it does not recover). */
export async function checkRecoveredSigner(
  publicClient: PublicClient,
  expected: Address,
  recovered: Address | undefined,
  who: string,
): Promise<void> {
  if (recovered && recovered.toLowerCase() === expected.toLowerCase()) return;
  const code = await chainRead(() => publicClient.getCode({ address: expected }));
  if (code && code !== "0x") return;
  throw new ApiInputError("signature", `is not ${who}'s signature over this request (${expected})`, 401);
}

/** Runs an RPC read; a failure is a 502, with viem's short message only (no request data). */
export async function chainRead<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    throw new ApiServiceError(502, `the chain did not answer: ${shortMessage(err)}`);
  }
}

const shortMessage = (err: unknown): string => summarize(err).message;

export type RevertMap = Record<string, { field: string; status: ApiErrorStatus; message: string }>;

/**
 * Maps a contract revert (from a simulation or gas estimate) to the request error it means; any
 * other failure is a 502, or a 503 when the relayer cannot pay for gas.
 */
export function requestErrorFromRevert(err: unknown, reverts: RevertMap): Error {
  if (err instanceof ApiInputError || err instanceof ApiServiceError) return err;
  if (err instanceof ViemBaseError) {
    const revert = err.walk((e) => e instanceof ContractFunctionRevertedError);
    const name = revert instanceof ContractFunctionRevertedError ? revert.data?.errorName : undefined;
    if (name && reverts[name]) {
      const { field, status, message } = reverts[name]!;
      return new ApiInputError(field, message, status);
    }
    if (name) return new ApiServiceError(502, `the contract refused the call (${name})`);
    if (err.walk((e) => e instanceof InsufficientFundsError)) return new ApiServiceError(503, "the relayer cannot pay for gas");
  }
  return new ApiServiceError(502, `the chain refused the call: ${shortMessage(err)}`);
}

/** Gas for a call from the estimate, with 10% headroom. */
export const withHeadroom = (gas: bigint) => gas + gas / 10n;

/** An async mutex per key: runs `fn` after every earlier holder of `key` has finished. */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await result;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
