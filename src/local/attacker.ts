import { type Address, type Hex, parseGwei } from "viem";
import { EncryptedERCAbi } from "../../abis/EncryptedERCAbi.js";
import type { ChainClients } from "../chain/clients.js";
import type { DeploymentManifest } from "../deployment/manifest.js";
import type { EercClient, PreparedTransfer } from "../eerc/client.js";
import type { Prover } from "../eerc/prover.js";
import { eercAccount, fundPayer, newFundedAccount } from "./marketplace.js";

/** Gas of one credit: it cannot be estimated, since each is proved from the balance the previous one leaves. */
const CREDIT_GAS = 2_000_000n;

export type CreditAttacker = {
  readonly address: Address;
  /** Broadcasts the next credit to the target (without waiting for it to be mined); returns its hash. */
  credit(): Promise<Hex>;
  /** Proves `count` more credits now, so that later `credit()` calls only broadcast. */
  prepare(count: number): Promise<void>;
  /** Credits broadcast so far. */
  readonly sent: number;
};

/**
 * Someone who lands zero-value private transfers on `target` (anvil only: the account is funded
 * with a cheat code), to test and measure what such credits do to a payer's chain of proofs.
 * A zero-value transfer is the cheapest credit there is: deposits credit the depositor and mints
 * are the owner's, so any credit to someone else needs a transfer proof. Credits are proved ahead
 * (each from the balance the previous one leaves: `prepare`, and one more in the background
 * whenever none is left), so `credit()` only broadcasts: with a priority fee above the payer's,
 * the credit is mined ahead of the payer transfer pending in the same block.
 */
export async function creditAttacker(args: {
  chain: ChainClients;
  manifest: DeploymentManifest;
  prover: Prover;
  target: Address;
  tokenId: bigint;
  /** Each credit's amount (default 0: a zero-value transfer, which costs the attacker only gas). */
  amount?: bigint;
  /** How many non-zero credits to fund (default 16). */
  credits?: number;
}): Promise<CreditAttacker> {
  const { chain, target, tokenId } = args;
  const amount = args.amount ?? 0n;
  const account = await newFundedAccount(chain);
  const client: EercClient = await eercAccount(chain, args.manifest, args.prover, account);
  // A spend proves against a recorded balance: the attacker needs one credit of its own first.
  await fundPayer(chain, args.manifest, client, account, amount > 0n ? amount * BigInt(args.credits ?? 16) : 1n);
  const prove = (from?: PreparedTransfer["nextBalance"]) =>
    client.prepareTransfer({ to: target, amount, tokenId, allowZero: true, ...(from && { from }) });
  const queue: PreparedTransfer[] = [];
  let last: PreparedTransfer["nextBalance"] | undefined;
  let proving: Promise<void> = Promise.resolve();
  const proveNext = () => {
    proving = proving.then(async () => {
      const p = await prove(last);
      last = p.nextBalance;
      queue.push(p);
    });
    return proving;
  };
  proveNext().catch(() => {});
  let nonce = await chain.publicClient.getTransactionCount({ address: account.address, blockTag: "pending" });
  const wallet = chain.walletFor(account);
  let sent = 0;
  return {
    address: account.address,
    get sent() {
      return sent;
    },
    async prepare(count: number) {
      for (let i = 0; i < count; i++) void proveNext().catch(() => {});
      await proving;
    },
    async credit() {
      if (queue.length === 0) await proving;
      if (queue.length === 0) await proveNext();
      const p = queue.shift()!;
      if (queue.length === 0) proveNext().catch(() => {});
      const hash = await wallet.writeContract({
        address: args.manifest.contracts.encryptedERC,
        abi: EncryptedERCAbi,
        functionName: "transfer",
        args: [
          p.to,
          p.tokenId,
          { proofPoints: p.proof.proofPoints, publicSignals: p.proof.publicSignals },
          p.balancePCT as unknown as readonly [bigint, bigint, bigint, bigint, bigint, bigint, bigint],
        ],
        nonce: nonce++,
        gas: CREDIT_GAS,
        maxPriorityFeePerGas: parseGwei("50"),
        maxFeePerGas: parseGwei("200"),
      });
      sent += 1;
      return hash;
    },
  };
}
