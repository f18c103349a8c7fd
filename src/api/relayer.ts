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

/**
 * Sends the relayer's transactions one at a time with locally tracked nonces, so concurrent
 * requests never reuse a nonce. A send resolves once the node has accepted the transaction (its
 * hash is known), not when it is mined. After a failed send the nonce is read again from the
 * node's pending count; a nonce the node refuses (another process using the same key) is retried
 * once with a fresh one.
 */
export class Relayer {
  readonly address: Address;
  private readonly wallet: WalletClient;
  private tail: Promise<unknown> = Promise.resolve();
  private nextNonce: number | undefined;
  private readonly log: Logger;

  constructor(
    readonly account: PrivateKeyAccount,
    readonly publicClient: PublicClient,
    walletClient: (account: PrivateKeyAccount) => WalletClient,
    private readonly chain: Chain,
    /** Each send: nonce, target, transaction hash and time; never the key or the calldata. */
    log: Logger = toLogger(apiLogger("relayer")),
  ) {
    this.address = account.address;
    this.wallet = walletClient(account);
    this.log = log;
  }

  send(tx: { to: Address; data: Hex; gas: bigint }): Promise<Hex> {
    const run = () => this.sendNow(tx);
    const result = this.tail.then(run, run);
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async sendNow(tx: { to: Address; data: Hex; gas: bigint }): Promise<Hex> {
    const started = performance.now();
    for (let attempt = 0; ; attempt++) {
      this.nextNonce ??= await this.publicClient.getTransactionCount({ address: this.address, blockTag: "pending" });
      const nonce = this.nextNonce;
      try {
        const hash = await this.wallet.sendTransaction({ account: this.account, chain: this.chain, ...tx, nonce });
        this.nextNonce += 1;
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
  const field = "signature";
  let recovered: Address | undefined;
  try {
    recovered = await recoverTypedDataAddress({ ...typedData, signature } as Parameters<typeof recoverTypedDataAddress>[0]);
  } catch {
    recovered = undefined;
  }
  if (recovered && recovered.toLowerCase() === expected.toLowerCase()) return;
  const code = await chainRead(() => publicClient.getCode({ address: expected }));
  if (code && code !== "0x") return;
  throw new ApiInputError(field, `is not ${who}'s signature over this request (${expected})`, 401);
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
