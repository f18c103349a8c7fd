/**
 * TestUSDC's EIP-3009 authorizations on anvil: the checks USDC makes (window, nonce, signer, payee)
 * each refuse with their own error, and a valid authorization moves exactly its value once.
 */
import { type Address, type Hex, hexToSignature, keccak256, type PrivateKeyAccount, parseEventLogs, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestUSDCAbi } from "../abis/TestUSDCAbi.js";
import { type Anvil, startAnvil } from "../src/chain/anvil.js";
import { type ChainClients, connectChain } from "../src/chain/clients.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { revertChecker } from "./contract-helpers.js";
import { deployTestUsdc } from "./x402-fixtures.js";

const [deployer, payer, payee, relayer, stranger] = ANVIL_KEYS.map((k) => privateKeyToAccount(k));

type Authorization = { from: Address; to: Address; value: bigint; validAfter: bigint; validBefore: bigint; nonce: Hex };

let anvil: Anvil;
let chain: ChainClients;
let usdc: Address;
let counter = 0;
const expectRevert = revertChecker(() => chain.publicClient);

const nextNonce = (): Hex => keccak256(toHex(`authorization ${++counter}`));
const now = async () => (await chain.publicClient.getBlock()).timestamp;
const balance = (who: Address) =>
  chain.publicClient.readContract({ address: usdc, abi: TestUSDCAbi, functionName: "balanceOf", args: [who] });

async function sign(
  signer: PrivateKeyAccount,
  primaryType: "TransferWithAuthorization" | "ReceiveWithAuthorization",
  auth: Authorization,
): Promise<Hex> {
  const fields = [
    { name: "from", type: "address" },
    { name: "to", type: "address" },
    { name: "value", type: "uint256" },
    { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" },
    { name: "nonce", type: "bytes32" },
  ] as const;
  return signer.signTypedData({
    domain: { name: "Test USDC", version: "2", chainId: chain.chain.id, verifyingContract: usdc },
    types: { [primaryType]: fields },
    primaryType,
    message: auth,
  } as never);
}

async function authorization(overrides: Partial<Authorization> = {}): Promise<Authorization> {
  const t = await now();
  return {
    from: payer.address,
    to: payee.address,
    value: 1_500n,
    validAfter: t - 60n,
    validBefore: t + 3_600n,
    nonce: nextNonce(),
    ...overrides,
  };
}

const argsOf = (a: Authorization, signature: Hex) => {
  const { v, r, s } = hexToSignature(signature);
  return [a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, Number(v), r, s] as const;
};

async function send(from: PrivateKeyAccount, functionName: string, args: readonly unknown[]) {
  const hash = await chain.walletFor(from).writeContract({ address: usdc, abi: TestUSDCAbi, functionName, args } as never);
  const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
  expect(receipt.status).toBe("success");
  return receipt;
}

beforeAll(async () => {
  anvil = await startAnvil();
  chain = await connectChain(anvil.rpcUrl);
  usdc = await deployTestUsdc(chain, deployer);
  await send(deployer, "mint", [payer.address, 1_000_000n]);
});

afterAll(async () => {
  await anvil?.stop();
});

describe("TestUSDC EIP-3009", () => {
  it("exposes USDC's EIP-712 domain: name Test USDC, version 2, this chain and contract", async () => {
    const [, name, version, chainId, verifyingContract] = await chain.publicClient.readContract({
      address: usdc,
      abi: TestUSDCAbi,
      functionName: "eip712Domain",
    });
    expect({ name, version, chainId, verifyingContract }).toEqual({
      name: "Test USDC",
      version: "2",
      chainId: 31337n,
      verifyingContract: usdc,
    });
    expect(await chain.publicClient.readContract({ address: usdc, abi: TestUSDCAbi, functionName: "version" })).toBe("2");
  });

  it("a valid transferWithAuthorization, sent by anyone, moves its value once and spends the nonce", async () => {
    const a = await authorization();
    const before = [await balance(payer.address), await balance(payee.address)];
    const receipt = await send(relayer, "transferWithAuthorization", argsOf(a, await sign(payer, "TransferWithAuthorization", a)));
    expect([await balance(payer.address), await balance(payee.address)]).toEqual([before[0]! - 1_500n, before[1]! + 1_500n]);
    const used = parseEventLogs({ abi: TestUSDCAbi, logs: receipt.logs, eventName: "AuthorizationUsed" });
    expect(used.map((l) => l.args)).toEqual([{ authorizer: payer.address, nonce: a.nonce }]);
    expect(
      await chain.publicClient.readContract({
        address: usdc,
        abi: TestUSDCAbi,
        functionName: "authorizationState",
        args: [a.from, a.nonce],
      }),
    ).toBe(true);
  });

  it("the bytes-signature overload moves funds as the v, r, s one does", async () => {
    const a = await authorization({ value: 7n });
    const before = await balance(payee.address);
    await send(relayer, "transferWithAuthorization", [
      a.from,
      a.to,
      a.value,
      a.validAfter,
      a.validBefore,
      a.nonce,
      await sign(payer, "TransferWithAuthorization", a),
    ]);
    expect(await balance(payee.address)).toBe(before + 7n);
  });

  it("a replayed authorization is refused: AuthorizationUsedOrCanceled", async () => {
    const a = await authorization();
    const args = argsOf(a, await sign(payer, "TransferWithAuthorization", a));
    await send(relayer, "transferWithAuthorization", args);
    await expectRevert(relayer, usdc, TestUSDCAbi, "transferWithAuthorization", args, "AuthorizationUsedOrCanceled", [
      payer.address,
      a.nonce,
    ]);
  });

  it("an expired authorization is refused (validBefore is exclusive), and so is one not yet valid (validAfter exclusive)", async () => {
    const t = await now();
    const expired = await authorization({ validAfter: 0n, validBefore: t - 1n });
    await expectRevert(
      relayer,
      usdc,
      TestUSDCAbi,
      "transferWithAuthorization",
      argsOf(expired, await sign(payer, "TransferWithAuthorization", expired)),
      "AuthorizationExpired",
    );
    const early = await authorization({ validAfter: t + 3_600n, validBefore: t + 7_200n });
    await expectRevert(
      relayer,
      usdc,
      TestUSDCAbi,
      "transferWithAuthorization",
      argsOf(early, await sign(payer, "TransferWithAuthorization", early)),
      "AuthorizationNotYetValid",
    );
  });

  it("an authorization signed by someone other than `from` is refused: InvalidAuthorizationSignature", async () => {
    const a = await authorization();
    await expectRevert(
      relayer,
      usdc,
      TestUSDCAbi,
      "transferWithAuthorization",
      argsOf(a, await sign(stranger, "TransferWithAuthorization", a)),
      "InvalidAuthorizationSignature",
      [payer.address],
    );
    // A transfer signature is no receive signature: the type hash is part of what is signed.
    await expectRevert(
      payee,
      usdc,
      TestUSDCAbi,
      "receiveWithAuthorization",
      argsOf(a, await sign(payer, "TransferWithAuthorization", a)),
      "InvalidAuthorizationSignature",
    );
  });

  it("a cancelled authorization is refused; cancelling needs the authorizer's signature and an unused nonce", async () => {
    const a = await authorization();
    const cancelTypes = {
      CancelAuthorization: [
        { name: "authorizer", type: "address" },
        { name: "nonce", type: "bytes32" },
      ],
    } as const;
    const domain = { name: "Test USDC", version: "2", chainId: chain.chain.id, verifyingContract: usdc } as const;
    const forged = await stranger.signTypedData({
      domain,
      types: cancelTypes,
      primaryType: "CancelAuthorization",
      message: { authorizer: payer.address, nonce: a.nonce },
    });
    const { v: fv, r: fr, s: fs } = hexToSignature(forged);
    await expectRevert(
      relayer,
      usdc,
      TestUSDCAbi,
      "cancelAuthorization",
      [payer.address, a.nonce, Number(fv), fr, fs],
      "InvalidAuthorizationSignature",
    );
    const cancel = await payer.signTypedData({
      domain,
      types: cancelTypes,
      primaryType: "CancelAuthorization",
      message: { authorizer: payer.address, nonce: a.nonce },
    });
    const { v, r, s } = hexToSignature(cancel);
    const receipt = await send(relayer, "cancelAuthorization", [payer.address, a.nonce, Number(v), r, s]);
    expect(parseEventLogs({ abi: TestUSDCAbi, logs: receipt.logs, eventName: "AuthorizationCanceled" }).map((l) => l.args)).toEqual([
      { authorizer: payer.address, nonce: a.nonce },
    ]);
    await expectRevert(
      relayer,
      usdc,
      TestUSDCAbi,
      "transferWithAuthorization",
      argsOf(a, await sign(payer, "TransferWithAuthorization", a)),
      "AuthorizationUsedOrCanceled",
    );
    await expectRevert(
      relayer,
      usdc,
      TestUSDCAbi,
      "cancelAuthorization",
      [payer.address, a.nonce, Number(v), r, s],
      "AuthorizationUsedOrCanceled",
    );
  });

  it("receiveWithAuthorization moves funds when the payee sends it and is refused from anyone else: CallerNotPayee", async () => {
    const a = await authorization({ value: 42n });
    const args = argsOf(a, await sign(payer, "ReceiveWithAuthorization", a));
    await expectRevert(relayer, usdc, TestUSDCAbi, "receiveWithAuthorization", args, "CallerNotPayee", [relayer.address, payee.address]);
    const before = await balance(payee.address);
    await send(payee, "receiveWithAuthorization", args);
    expect(await balance(payee.address)).toBe(before + 42n);
  });

  it("an authorization for more than the balance is refused by the ERC-20 and leaves the nonce unused", async () => {
    const a = await authorization({ value: (await balance(payer.address)) + 1n });
    await expectRevert(
      relayer,
      usdc,
      TestUSDCAbi,
      "transferWithAuthorization",
      argsOf(a, await sign(payer, "TransferWithAuthorization", a)),
      "ERC20InsufficientBalance",
    );
    expect(
      await chain.publicClient.readContract({
        address: usdc,
        abi: TestUSDCAbi,
        functionName: "authorizationState",
        args: [a.from, a.nonce],
      }),
    ).toBe(false);
  });
});
