import {
  type Address,
  BaseError,
  ContractFunctionRevertedError,
  getAddress,
  type Hex,
  isAddress,
  isAddressEqual,
  type PublicClient,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { EncryptedERCAbi } from "../../abis/EncryptedERCAbi.js";
import { connectChain } from "../../src/chain/clients.js";
import { ANVIL_KEYS, LOCAL_CHAIN_ID } from "../../src/chain/local.js";
import { readAuditorPublicKey, readTokenId } from "../../src/eerc/client.js";
import { detectEerc } from "../../src/eerc/deployment-check.js";
import { InsufficientBalanceError } from "../../src/eerc/errors.js";
import type { CircuitInputs } from "../../src/eerc/inputs.js";
import type { ProofResult } from "../../src/eerc/prover.js";
import { checkSpend, type SpendBalance, spendProof, spendProofInputs, withdrawArgs, withdrawCalldata } from "../../src/eerc/spend.js";
import { balanceFromChain, openRpc } from "../../src/history/chain.js";
import { ChainMismatchError } from "../../src/history/errors.js";
import { formatUsdc } from "../../src/money/usdc.js";
import { injectedProvider } from "./wallet.js";

/**
 * "Withdraw to your wallet", with nothing but the chain's RPC endpoint: the deployment's addresses
 * from `deployment.json`, the balance from the eERC's `balanceOf`, decrypted and checked with the
 * key held in the page, the withdraw proof made here with snarkjs (loaded on the first withdraw),
 * and the transaction signed by the connected wallet. The same steps as the CLI's `withdraw`,
 * over the same SDK functions (`src/eerc/spend.ts`); the key goes into the prover and nowhere else.
 */

/** The public part of a deployment manifest that a withdraw needs: its chain and three addresses. */
export type Deployment = { chainId: number; contracts: { encryptedERC: Address; registrar: Address; token: Address } };

/** A message for the provider: what went wrong, and, for `amount`, that the amount field is at fault. */
export class WithdrawError extends Error {
  constructor(
    message: string,
    readonly field: "amount" | null = null,
  ) {
    super(message);
  }
}

const errorText = (e: unknown) => (e instanceof Error ? ((e as { shortMessage?: string }).shortMessage ?? e.message) : String(e));

/** Reads and checks `deployment.json` (a deployment manifest, or its chainId and contracts). */
export async function loadDeployment(url: string): Promise<Deployment> {
  let body: unknown;
  try {
    const res = await fetch(url, { cache: "no-cache" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    body = await res.json();
  } catch (e) {
    throw new WithdrawError(
      `the deployment's addresses could not be read from ${url} (${errorText(e)}): put the deployment manifest there as deployment.json, or give its URL with ?deployment=`,
    );
  }
  const d = body as { chainId?: unknown; contracts?: Record<string, unknown> };
  const address = (field: "encryptedERC" | "registrar" | "token"): Address => {
    const v = d.contracts?.[field];
    if (typeof v !== "string" || !isAddress(v)) throw new WithdrawError(`${url}: contracts.${field} is not an address`);
    return getAddress(v);
  };
  if (!Number.isInteger(d.chainId)) throw new WithdrawError(`${url}: chainId is not an integer`);
  return {
    chainId: d.chainId as number,
    contracts: { encryptedERC: address("encryptedERC"), registrar: address("registrar"), token: address("token") },
  };
}

/** The encrypted balance a withdraw spends, read from the chain and decrypted here. */
export type Withdrawable = {
  deployment: Deployment;
  publicClient: PublicClient;
  tokenId: bigint;
  balanceMicro: bigint;
  /** What a withdraw is proved against; null while the token was never deposited (nothing to withdraw). */
  balance: SpendBalance | null;
};

/**
 * The account's balance of the deployment's token, as `withdraw` reads it: the RPC must serve the
 * deployment's chain, the eERC there must be a version these tools know, `sk` must be the
 * account's registered key, and the balance's PCTs must sum
 * to what its EGCT decrypts to (`balanceFromChain`). A token never deposited has no balance yet.
 */
export async function readWithdrawable(args: {
  deploymentUrl: string;
  rpcUrl: string;
  account: Address;
  sk: bigint;
}): Promise<Withdrawable> {
  const deployment = await loadDeployment(args.deploymentUrl);
  let publicClient: PublicClient;
  try {
    publicClient = await openRpc(args.rpcUrl, { expectedChainId: deployment.chainId });
  } catch (e) {
    if (e instanceof ChainMismatchError) {
      throw new WithdrawError(`Wrong chain: the deployment is on chain ${deployment.chainId}, the RPC URL serves chain ${e.actual}`);
    }
    throw e;
  }
  const { encryptedERC, registrar, token } = deployment.contracts;
  await detectEerc(publicClient, encryptedERC);
  const tokenId = await readTokenId(publicClient, encryptedERC, token);
  if (tokenId === 0n) return { deployment, publicClient, tokenId, balanceMicro: 0n, balance: null };
  const b = await balanceFromChain({
    rpcUrl: args.rpcUrl,
    publicClient,
    encryptedERC,
    registrar,
    account: args.account,
    tokenId,
    sk: args.sk,
  });
  return { deployment, publicClient, tokenId, balanceMicro: b.balanceMicro, balance: { eGCT: b.eGCT, plain: b.balanceMicro } };
}

/** The demo account's key (anvil's public test keys), for the local chain only. */
function demoAccount(address: Address, chainId: number) {
  if (chainId !== LOCAL_CHAIN_ID)
    throw new WithdrawError(`Wrong chain: demo accounts are for the local chain (${LOCAL_CHAIN_ID}) only; this is chain ${chainId}`);
  const key = ANVIL_KEYS.find((k) => isAddressEqual(privateKeyToAccount(k).address, address));
  if (!key) throw new WithdrawError(`${address} is not a demo account`);
  return privateKeyToAccount(key);
}

/** The circuit's witness program and proving key, next to the page (`circuits/`), fetched once. */
const artifacts = new Map<string, Promise<Uint8Array>>();
function artifact(name: string): Promise<Uint8Array> {
  const url = new URL(`circuits/${name}`, document.baseURI).href;
  let loaded = artifacts.get(url);
  if (!loaded) {
    loaded = fetch(url).then(async (res) => {
      if (!res.ok)
        throw new Error(
          `${url}: HTTP ${res.status} (the build copies the withdraw circuit into circuits/: npm run build:circuits, then npm run build:web)`,
        );
      return new Uint8Array(await res.arrayBuffer());
    });
    loaded.catch(() => artifacts.delete(url));
    artifacts.set(url, loaded);
  }
  return loaded;
}

/** A Groth16 withdraw proof made in this page: snarkjs and the circuit's files load on the first call. */
async function proveWithdraw(input: CircuitInputs): Promise<ProofResult> {
  const [{ groth16 }, wasm, zkey] = await Promise.all([import("snarkjs"), artifact("withdraw.wasm"), artifact("withdraw.zkey")]);
  // circom 2 witness code brings its own memory: one page instead of the runtime's default 2 GiB.
  return groth16.fullProve(input, { type: "mem", data: wasm }, { type: "mem", data: zkey }, undefined, { memorySize: 1 });
}

/** The eERC's error, by name, with what it means for a withdraw proved in the page. */
function revertReason(e: unknown): string {
  const reverted = e instanceof BaseError ? e.walk((x) => x instanceof ContractFunctionRevertedError) : null;
  const name = reverted instanceof ContractFunctionRevertedError ? reverted.data?.errorName : undefined;
  if (name === "InvalidProof")
    return "InvalidProof: the proof does not verify on the deployment's verifier (circuits/withdraw.zkey next to the page is not the deployment's proving key)";
  return name ?? errorText(e);
}

export type WithdrawStep = "reading" | "proving" | "checking" | "signing" | "mining";

export type WithdrawResult = {
  amountMicro: bigint;
  txHash: Hex;
  blockNumber: bigint;
  beforeMicro: bigint;
  afterMicro: bigint;
  provingMs: number;
};

/**
 * Withdraws `amountMicro` of the account's encrypted balance to its own wallet as the plain token:
 * reads and checks the balance, proves in the page, has the eERC check the call (`eth_call`)
 * before anything is signed, sends it with the connected wallet and waits for it to be mined.
 * Every refusal before sending is a WithdrawError and leaves the chain untouched.
 */
export async function withdraw(args: {
  deploymentUrl: string;
  rpcUrl: string;
  account: Address;
  sk: bigint;
  source: "wallet" | "demo";
  amountMicro: bigint;
  onStep(step: WithdrawStep): void;
}): Promise<WithdrawResult> {
  const { account, amountMicro } = args;
  args.onStep("reading");
  const w = await readWithdrawable(args);
  const { encryptedERC } = w.deployment.contracts;
  try {
    checkSpend(account, amountMicro, w.balanceMicro);
  } catch (e) {
    if (e instanceof InsufficientBalanceError) {
      throw new WithdrawError(
        `Amount: ${formatUsdc(amountMicro)} USDC is more than your encrypted balance, ${formatUsdc(w.balanceMicro)} USDC: withdraw at most ${formatUsdc(w.balanceMicro)}`,
        "amount",
      );
    }
    throw new WithdrawError(`Amount: ${errorText(e)}`, "amount");
  }
  // checkSpend refused a zero amount and anything over the balance: the balance is there.
  const current = w.balance!;
  const send = await sender(args.source, account, w.deployment.chainId, args.rpcUrl);
  const auditorPk = await readAuditorPublicKey(w.publicClient, encryptedERC);
  const { input, balancePCT } = spendProofInputs("withdraw", { sk: args.sk, amount: amountMicro, current, auditorPk });

  args.onStep("proving");
  const started = performance.now();
  let result: ProofResult;
  try {
    result = await proveWithdraw(input);
  } catch (e) {
    throw new WithdrawError(`The withdraw proof could not be made in this page: ${errorText(e)}`);
  }
  const provingMs = performance.now() - started;
  const proof = spendProof("withdraw", result);

  // The eERC checks the proof against its verifier and the balance it was made from: a proving
  // key that is not the deployment's, or a balance changed meanwhile, stops here, before signing.
  args.onStep("checking");
  try {
    await w.publicClient.simulateContract({
      account,
      address: encryptedERC,
      abi: EncryptedERCAbi,
      functionName: "withdraw",
      args: withdrawArgs(w.tokenId, proof, balancePCT),
    });
  } catch (e) {
    throw new WithdrawError(`The eERC would revert this withdraw, so nothing was sent: ${revertReason(e)}`);
  }
  const data = withdrawCalldata(w.tokenId, proof, balancePCT);

  args.onStep("signing");
  const txHash = await send(encryptedERC, data);
  args.onStep("mining");
  const receipt = await w.publicClient.waitForTransactionReceipt({ hash: txHash });
  if (receipt.status !== "success") throw new WithdrawError(`The withdraw transaction ${txHash} reverted: nothing was withdrawn`);
  const after = await readWithdrawable(args);
  return { amountMicro, txHash, blockNumber: receipt.blockNumber, beforeMicro: w.balanceMicro, afterMicro: after.balanceMicro, provingMs };
}

/**
 * How the connected wallet sends: a demo account signs here with its (public) anvil key and the
 * transaction goes to the RPC; an injected wallet gets `eth_sendTransaction`, after checking that
 * it is on the deployment's chain.
 */
async function sender(
  source: "wallet" | "demo",
  account: Address,
  chainId: number,
  rpcUrl: string,
): Promise<(to: Address, data: Hex) => Promise<Hex>> {
  if (source === "demo") {
    const local = demoAccount(account, chainId);
    const wallet = (await connectChain(rpcUrl)).walletFor(local);
    return (to, data) => wallet.sendTransaction({ to, data });
  }
  const provider = injectedProvider();
  if (!provider) throw new WithdrawError("the wallet is no longer in this page: connect it again");
  const walletChain = Number(await provider.request({ method: "eth_chainId" }));
  if (walletChain !== chainId) {
    throw new WithdrawError(
      `Wrong chain: your wallet is on chain ${walletChain}; switch it to chain ${chainId} (the deployment's) and withdraw again`,
    );
  }
  return async (to, data) => {
    try {
      return (await provider.request({ method: "eth_sendTransaction", params: [{ from: account, to, data }] })) as Hex;
    } catch (e) {
      const { code, message } = (e ?? {}) as { code?: unknown; message?: unknown };
      // EIP-1193's 4001: the user said no.
      if (code === 4001) throw new WithdrawError("The wallet declined to send the withdraw: nothing was sent");
      throw new WithdrawError(`The wallet could not send the withdraw: ${typeof message === "string" && message ? message : String(e)}`);
    }
  };
}
