import {
  type Account,
  type Address,
  type Chain,
  type ContractFunctionArgs,
  type ContractFunctionName,
  erc20Abi,
  getAddress,
  type Hex,
  type PublicClient,
  type TransactionReceipt,
  type Transport,
  type WalletClient,
  type WriteContractParameters,
} from "viem";
import { EncryptedERCAbi } from "../../abis/EncryptedERCAbi.js";
import { RegistrarAbi } from "../../abis/RegistrarAbi.js";
import { BaseError } from "../errors.js";
import { decryptBalance } from "./balance.js";
import { type OnChainBalance, readBalance } from "./balance-read.js";
import { type ProofCalldata, proofToCalldata } from "./calldata.js";
import { type Point, pointEquals } from "./curve.js";
import { detectEerc, type EercCapabilities } from "./deployment-check.js";
import { type EGCT, subEGCT } from "./elgamal.js";
import {
  AuditorNotSetError,
  InvalidAmountError,
  KeyMismatchError,
  MessagesUnsupportedError,
  ReceiverNotRegisteredError,
  SenderNotRegisteredError,
  validateAmount,
} from "./errors.js";
import { mintInputs, registrationInputs, type TransferPCTOptions, transferInputs } from "./inputs.js";
import { deriveKeyFromWallet, publicKeyOf } from "./keys.js";
import { encryptPCT } from "./pct.js";
import type { Prover } from "./prover.js";
import { checkSpend, type SpendCircuit, spendProof, spendProofInputs, withdrawArgs, words7 } from "./spend.js";

// Balance reads live in balance-read.ts; re-exported for the SDK's callers.
export { type OnChainBalance, type RawBalance, toBalanceView } from "./balance-read.js";

export type EercWallet = WalletClient<Transport, Chain, Account>;

type EercWrite = ContractFunctionName<typeof EncryptedERCAbi, "nonpayable">;
type EercWriteArgs<F extends EercWrite> = ContractFunctionArgs<typeof EncryptedERCAbi, "nonpayable", F>;

export type EercContracts = { encryptedERC: Address; registrar: Address };

/** A proven spend, ready to send: proving and sending are split so payouts can be pipelined. */
export type PreparedTransfer = {
  kind: "transfer";
  to: Address;
  tokenId: bigint;
  amount: bigint;
  proof: ProofCalldata<"transfer">;
  balancePCT: bigint[];
  /** The sender's EGCT after this transfer, for proving the next one before this is mined. */
  nextBalance: { eGCT: EGCT; plain: bigint };
};

export class TransactionRevertedError extends BaseError {
  readonly code = "TRANSACTION_REVERTED";
  constructor(
    readonly hash: Hex,
    readonly action: string,
  ) {
    super(`${action} transaction ${hash} reverted`);
  }
}

/** The arguments of `transfer`, with the `bytes message` overload's message when given. */
function transferArgs(prepared: PreparedTransfer) {
  return [
    prepared.to,
    prepared.tokenId,
    { proofPoints: prepared.proof.proofPoints, publicSignals: prepared.proof.publicSignals },
    words7(prepared.balancePCT),
  ] as const;
}

/** The eERC's auditor public key; AuditorNotSetError while none is set. */
export async function readAuditorPublicKey(publicClient: PublicClient, encryptedERC: Address): Promise<Point> {
  const set = await publicClient.readContract({ address: encryptedERC, abi: EncryptedERCAbi, functionName: "isAuditorKeySet" });
  if (!set) throw new AuditorNotSetError(encryptedERC);
  const [x, y] = await publicClient.readContract({ address: encryptedERC, abi: EncryptedERCAbi, functionName: "auditorPublicKey" });
  return [x, y];
}

/** Converter mode: the eERC's id for the ERC-20 `token` (0 until its first deposit). */
export const readTokenId = (publicClient: PublicClient, encryptedERC: Address, token: Address): Promise<bigint> =>
  publicClient.readContract({ address: encryptedERC, abi: EncryptedERCAbi, functionName: "tokenIds", args: [token] });

/**
 * One account's eERC-20 client: its private key, derived from a wallet signature exactly as the
 * official SDK does, plus typed checks before any proof is computed.
 */
export class EercClient {
  readonly address: Address;
  readonly publicKey: Point;
  // A true private field: it never shows up when the client is logged or serialised.
  readonly #privateKey: bigint;

  private constructor(
    readonly publicClient: PublicClient,
    readonly wallet: EercWallet,
    readonly contracts: EercContracts,
    readonly prover: Prover,
    privateKey: bigint,
  ) {
    this.#privateKey = privateKey;
    this.address = getAddress(wallet.account.address);
    this.publicKey = publicKeyOf(privateKey);
  }

  /** Derives the account's eERC key from its wallet signature. */
  static async connect(args: {
    publicClient: PublicClient;
    wallet: EercWallet;
    contracts: EercContracts;
    prover: Prover;
  }): Promise<EercClient> {
    const account = args.wallet.account;
    const sk = await deriveKeyFromWallet({
      address: account.address,
      signMessage: ({ message }) => args.wallet.signMessage({ account, message }),
    });
    return new EercClient(args.publicClient, args.wallet, args.contracts, args.prover, sk);
  }

  /** The derived private key, for its owner's own tooling (never logged). */
  exportPrivateKey(): bigint {
    return this.#privateKey;
  }

  /** Waits for a sent write; a revert is TransactionRevertedError naming `action`. */
  private async receiptOf(action: string, hash: Hex): Promise<TransactionReceipt> {
    const receipt = await this.publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new TransactionRevertedError(hash, action);
    return receipt;
  }

  private capabilities?: Promise<EercCapabilities>;

  /** Refuses a message (before any proof) on an eERC without the `bytes message` overloads. */
  private async checkMessage(message: Hex | undefined): Promise<void> {
    if (!message) return;
    this.capabilities ??= detectEerc(this.publicClient, this.contracts.encryptedERC);
    if (!(await this.capabilities).messages) throw new MessagesUnsupportedError(this.contracts.encryptedERC);
  }

  /** Sends an eERC write, using the `bytes message` overload when a message is given. */
  private async writeEerc<const F extends EercWrite>(functionName: F, args: EercWriteArgs<F>, message?: Hex): Promise<TransactionReceipt> {
    await this.checkMessage(message);
    // With a message, the overload that takes it: the same arguments and the message last.
    const withMessage = (message ? [...(args as readonly unknown[]), message] : args) as EercWriteArgs<F>;
    const hash = await this.wallet.writeContract({
      address: this.contracts.encryptedERC,
      abi: EncryptedERCAbi,
      functionName,
      args: withMessage,
    } as WriteContractParameters<typeof EncryptedERCAbi, F, EercWriteArgs<F>, Chain, Account>);
    return this.receiptOf(functionName, hash);
  }

  async chainId(): Promise<bigint> {
    return BigInt(await this.publicClient.getChainId());
  }

  async isRegistered(address: Address = this.address): Promise<boolean> {
    return this.publicClient.readContract({
      address: this.contracts.registrar,
      abi: RegistrarAbi,
      functionName: "isUserRegistered",
      args: [address],
    });
  }

  async registeredPublicKey(address: Address): Promise<Point | undefined> {
    if (!(await this.isRegistered(address))) return undefined;
    const [x, y] = await this.publicClient.readContract({
      address: this.contracts.registrar,
      abi: RegistrarAbi,
      functionName: "getUserPublicKey",
      args: [address],
    });
    return [x, y];
  }

  auditorPublicKey(): Promise<Point> {
    return readAuditorPublicKey(this.publicClient, this.contracts.encryptedERC);
  }

  /** Registers the account's public key (a no-op when this key is already registered). */
  async register(): Promise<TransactionReceipt | undefined> {
    const registered = await this.registeredPublicKey(this.address);
    if (registered && pointEquals(registered, this.publicKey)) return undefined;
    const { input } = registrationInputs({ sk: this.#privateKey, address: this.address, chainId: await this.chainId() });
    const proof = proofToCalldata("registration", await this.prover.prove("registration", input));
    const hash = await this.wallet.writeContract({
      address: this.contracts.registrar,
      abi: RegistrarAbi,
      functionName: "register",
      args: [{ proofPoints: proof.proofPoints, publicSignals: proof.publicSignals }],
    });
    return this.receiptOf("register", hash);
  }

  private async ownKeyRegistered(): Promise<void> {
    const registered = await this.registeredPublicKey(this.address);
    if (!registered) throw new SenderNotRegisteredError(this.address);
    if (!pointEquals(registered, this.publicKey)) throw new KeyMismatchError(this.address, registered, this.publicKey);
  }

  /** The balance as `balanceOf` returns it, read with a bounded cost whatever the pending queue's length (`readBalance`). */
  balanceView(tokenId: bigint, address: Address = this.address): Promise<OnChainBalance> {
    return readBalance(this.publicClient, { encryptedERC: this.contracts.encryptedERC, user: address, tokenId });
  }

  /** The decrypted balance in the eERC's smallest unit (micro-USDC), checked against the EGCT. */
  async balance(tokenId: bigint): Promise<bigint> {
    return decryptBalance(await this.balanceView(tokenId), this.#privateKey);
  }

  tokenId(token: Address): Promise<bigint> {
    return readTokenId(this.publicClient, this.contracts.encryptedERC, token);
  }

  /** Converter mode: wraps `amount` of an ERC-20 (in its own units) into encrypted balance. */
  async deposit(args: { token: Address; amount: bigint; message?: Hex }): Promise<TransactionReceipt> {
    const amount = validateAmount(args.amount);
    await this.ownKeyRegistered();
    await this.auditorPublicKey();
    const { scaled } = await this.scaleToEerc(args.token, amount);
    if (scaled === 0n) throw new InvalidAmountError(amount, "is below one eERC unit after scaling to the eERC decimals");
    validateAmount(scaled);
    const { pct } = encryptPCT(scaled, this.publicKey);
    const allowance = await this.publicClient.readContract({
      address: args.token,
      abi: erc20Abi,
      functionName: "allowance",
      args: [this.address, this.contracts.encryptedERC],
    });
    if (allowance < amount) {
      const hash = await this.wallet.writeContract({
        address: args.token,
        abi: erc20Abi,
        functionName: "approve",
        args: [this.contracts.encryptedERC, amount],
      });
      await this.receiptOf("approve", hash);
    }
    return this.writeEerc("deposit", [amount, args.token, words7(pct)], args.message);
  }

  private async scaleToEerc(token: Address, amount: bigint): Promise<{ scaled: bigint }> {
    const [tokenDecimals, eercDecimals] = await Promise.all([
      this.publicClient.readContract({ address: token, abi: erc20Abi, functionName: "decimals" }),
      this.publicClient.readContract({ address: this.contracts.encryptedERC, abi: EncryptedERCAbi, functionName: "decimals" }),
    ]);
    const diff = Number(tokenDecimals) - Number(eercDecimals);
    return { scaled: diff >= 0 ? amount / 10n ** BigInt(diff) : amount * 10n ** BigInt(-diff) };
  }

  /** The checks every spend makes before proving; returns the decrypted balance. */
  private async spendPreconditions(
    tokenId: bigint,
    amount: bigint,
    balance?: { eGCT: EGCT; plain: bigint },
    options: { allowZero?: boolean } = {},
  ) {
    validateAmount(amount, options);
    await this.ownKeyRegistered();
    const auditorPk = await this.auditorPublicKey();
    const current =
      balance ??
      (await (async () => {
        const view = await this.balanceView(tokenId);
        return { eGCT: view.eGCT, plain: decryptBalance(view, this.#privateKey) };
      })());
    checkSpend(this.address, amount, current.plain, options);
    return { auditorPk, current };
  }

  /**
   * Proves a private transfer. `from` lets a caller chain transfers: pass the previous
   * prepared transfer's `nextBalance` to prove against the balance it will leave.
   */
  async prepareTransfer(args: {
    to: Address;
    amount: bigint;
    tokenId: bigint;
    from?: { eGCT: EGCT; plain: bigint };
    pct?: TransferPCTOptions;
    /** Allow a zero amount: a real transfer that hides whether anything was sent (payout padding). */
    allowZero?: boolean;
  }): Promise<PreparedTransfer> {
    const to = getAddress(args.to);
    const { auditorPk, current } = await this.spendPreconditions(args.tokenId, args.amount, args.from, { allowZero: args.allowZero });
    const receiverPk = await this.registeredPublicKey(to);
    if (!receiverPk) throw new ReceiverNotRegisteredError(to);
    const built = transferInputs({
      sk: this.#privateKey,
      value: args.amount,
      balance: current.plain,
      balanceCT: current.eGCT,
      receiverPk,
      auditorPk,
      pct: args.pct,
    });
    const proof = proofToCalldata("transfer", await this.prover.prove("transfer", built.input));
    const remaining = current.plain - args.amount;
    return {
      kind: "transfer",
      to,
      tokenId: args.tokenId,
      amount: args.amount,
      proof,
      balancePCT: encryptPCT(remaining, this.publicKey).pct,
      nextBalance: { eGCT: subEGCT(current.eGCT, built.senderVTT), plain: remaining },
    };
  }

  async sendTransfer(prepared: PreparedTransfer, options: { message?: Hex } = {}): Promise<TransactionReceipt> {
    const [to, tokenId, proof, balancePCT] = transferArgs(prepared);
    return this.writeEerc("transfer", [to, tokenId, proof, balancePCT], options.message);
  }

  /**
   * Broadcasts a prepared transfer and returns its hash without waiting for it to be mined. With
   * `nonce` and `gas` given nothing is simulated first, so a transfer proved from a predicted
   * balance can be sent while the transfers before it are still pending.
   */
  async broadcastTransfer(prepared: PreparedTransfer, options: { message?: Hex; nonce?: number; gas?: bigint } = {}): Promise<Hex> {
    const args = transferArgs(prepared);
    const contract = {
      address: this.contracts.encryptedERC,
      abi: EncryptedERCAbi,
      functionName: "transfer",
      nonce: options.nonce,
      gas: options.gas,
    } as const;
    return options.message
      ? this.wallet.writeContract({ ...contract, args: [...args, options.message] })
      : this.wallet.writeContract({ ...contract, args });
  }

  /** Gas for sending `prepared` now, as the node estimates it against the current state. */
  async estimateTransferGas(prepared: PreparedTransfer, options: { message?: Hex } = {}): Promise<bigint> {
    const args = transferArgs(prepared);
    const contract = {
      address: this.contracts.encryptedERC,
      abi: EncryptedERCAbi,
      functionName: "transfer",
      account: this.wallet.account,
    } as const;
    return options.message
      ? this.publicClient.estimateContractGas({ ...contract, args: [...args, options.message] })
      : this.publicClient.estimateContractGas({ ...contract, args });
  }

  async transfer(args: { to: Address; amount: bigint; tokenId: bigint; message?: Hex }): Promise<TransactionReceipt> {
    await this.checkMessage(args.message);
    return this.sendTransfer(await this.prepareTransfer(args), { message: args.message });
  }

  /** Converter mode: unwraps `amount` (eERC units) back to the ERC-20; the amount is public. */
  async withdraw(args: { amount: bigint; tokenId: bigint; message?: Hex }): Promise<TransactionReceipt> {
    await this.checkMessage(args.message);
    const { proof, balancePCT } = await this.proveSpend("withdraw", args.tokenId, args.amount);
    return this.writeEerc("withdraw", withdrawArgs(args.tokenId, proof, balancePCT), args.message);
  }

  /** Standalone mode, owner only: mints `amount` encrypted to `to`. */
  async mint(args: { to: Address; amount: bigint; message?: Hex }): Promise<TransactionReceipt> {
    await this.checkMessage(args.message);
    const amount = validateAmount(args.amount);
    const to = getAddress(args.to);
    const auditorPk = await this.auditorPublicKey();
    const receiverPk = await this.registeredPublicKey(to);
    if (!receiverPk) throw new ReceiverNotRegisteredError(to);
    const { input } = mintInputs({ value: amount, chainId: await this.chainId(), receiverPk, auditorPk });
    const proof = proofToCalldata("mint", await this.prover.prove("mint", input));
    return this.writeEerc("privateMint", [to, { proofPoints: proof.proofPoints, publicSignals: proof.publicSignals }], args.message);
  }

  /** Standalone mode: destroys `amount` of the caller's encrypted balance. */
  async burn(args: { amount: bigint; message?: Hex }): Promise<TransactionReceipt> {
    await this.checkMessage(args.message);
    const { proof, balancePCT } = await this.proveSpend("burn", 0n, args.amount);
    return this.writeEerc("privateBurn", [proof, balancePCT], args.message);
  }

  /** Proves that `amount` leaves the caller's balance (withdraw or burn); returns the proof and the new balance's PCT. */
  private async proveSpend<C extends SpendCircuit>(circuit: C, tokenId: bigint, amount: bigint) {
    const { auditorPk, current } = await this.spendPreconditions(tokenId, amount);
    const { input, balancePCT } = spendProofInputs(circuit, { sk: this.#privateKey, amount, current, auditorPk });
    return { proof: spendProof(circuit, await this.prover.prove(circuit, input)), balancePCT };
  }
}
