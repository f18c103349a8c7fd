import type { Address, Hex, PublicClient } from "viem";
import { EncryptedERCAbi } from "../../abis/EncryptedERCAbi.js";
import { ProviderRegistryAbi } from "../../abis/ProviderRegistryAbi.js";
import { RegistrarAbi } from "../../abis/RegistrarAbi.js";
import { UsageLedgerAbi } from "../../abis/UsageLedgerAbi.js";
import type { Point } from "../eerc/curve.js";
import { InvalidRecipientKeyError } from "./errors.js";
import type { LineKeys } from "./lines.js";

async function registeredKey(client: PublicClient, registrar: Address, account: Address, who: string): Promise<Point> {
  const [x, y] = await client.readContract({ address: registrar, abi: RegistrarAbi, functionName: "getUserPublicKey", args: [account] });
  if (x === 0n && y === 0n) throw new InvalidRecipientKeyError(`${who} (${account} is not registered)`);
  return [x, y];
}

/**
 * The UsageLedger's operator (`operator()`, not its owner) and the eERC key the Registrar holds for
 * it (null: not registered): the key the operator copy of every line is encrypted to.
 */
export async function ledgerOperatorKey(
  client: PublicClient,
  contracts: { usageLedger: Address; registrar: Address },
): Promise<{ operator: Address; publicKey: Point | null }> {
  const operator = await client.readContract({ address: contracts.usageLedger, abi: UsageLedgerAbi, functionName: "operator" });
  const [x, y] = await client.readContract({
    address: contracts.registrar,
    abi: RegistrarAbi,
    functionName: "getUserPublicKey",
    args: [operator],
  });
  return { operator, publicKey: x === 0n && y === 0n ? null : [x, y] };
}

/**
 * The recipients of a batch's lines, read from chain: each provider's payout account key from the
 * Registrar, the auditor key set on the eERC, and the operator account's registered key (or the
 * operator's public key, when given as `{ publicKey }`).
 */
export async function fetchLineKeys(
  client: PublicClient,
  contracts: { providerRegistry: Address; registrar: Address; encryptedERC: Address },
  operator: Address | { publicKey: Point },
  providerIds: readonly Hex[],
): Promise<LineKeys> {
  const operatorPk =
    typeof operator === "string" ? await registeredKey(client, contracts.registrar, operator, "the operator") : operator.publicKey;
  const [ax, ay] = await client.readContract({ address: contracts.encryptedERC, abi: EncryptedERCAbi, functionName: "auditorPublicKey" });
  if (ax === 0n && ay === 0n) throw new InvalidRecipientKeyError("the auditor (no auditor set)");
  const providers = new Map<string, Point>();
  for (const id of providerIds) {
    const provider = await client.readContract({
      address: contracts.providerRegistry,
      abi: ProviderRegistryAbi,
      functionName: "getProvider",
      args: [id],
    });
    providers.set(id.toLowerCase(), await registeredKey(client, contracts.registrar, provider.payoutAccount, `provider ${id}`));
  }
  return {
    operatorPk,
    auditorPk: [ax, ay],
    providerPk: (id) => {
      const pk = providers.get(id.toLowerCase());
      if (!pk) throw new InvalidRecipientKeyError(`provider ${id} (key not fetched)`);
      return pk;
    },
  };
}
