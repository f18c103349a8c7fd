import type { TransactionReceipt } from "viem";
import { TestUSDCAbi } from "../abis/TestUSDCAbi.js";
import { usdcTokenId } from "../src/deployment/manifest.js";
import { EercClient } from "../src/eerc/client.js";
import { eercAccount, mintUsdc, newFundedAccount } from "../src/local/marketplace.js";
import { localWorld } from "../src/local/world.js";
import { writeResults } from "./report.js";

/**
 * Gas of each eERC operation a provider, the operator or a payer pays for, on this project's
 * contracts with the real Groth16 verifiers and real proofs, written to `bench/results/gas.json`.
 * Baseline, same run: a plain USDC transfer, which tells anyone the amount.
 */
export async function benchGas({ log }: { log: (line: string) => void }) {
  const world = await localWorld();
  try {
    const { chain, manifest, prover } = world;
    const [alice, bob] = [await newFundedAccount(chain), await newFundedAccount(chain)];
    const gas: Record<string, number> = {};
    const record = (name: string, receipt: TransactionReceipt | undefined) => {
      if (!receipt) throw new Error(`${name} sent no transaction`);
      gas[name] = Number(receipt.gasUsed);
      log(`${name}: ${gas[name]!.toLocaleString("en-US")} gas`);
    };

    await mintUsdc(chain, manifest, alice, alice.address, 2_000_000n);
    const plain = await chain.walletFor(alice).writeContract({
      address: manifest.contracts.token,
      abi: TestUSDCAbi,
      functionName: "transfer",
      args: [bob.address, 1_000n],
    });
    record("baseline: USDC transfer (public amount)", await chain.publicClient.waitForTransactionReceipt({ hash: plain }));

    const aliceEerc = await eercAccount(chain, manifest, prover, alice);
    const bobEerc = await eercAccount(chain, manifest, prover, bob);
    // eercAccount registered both; measure one more registration on its own.
    const carol = await newFundedAccount(chain);
    const carolEerc = await EercClient.connect({
      publicClient: chain.publicClient,
      wallet: chain.walletFor(carol),
      contracts: { encryptedERC: manifest.contracts.encryptedERC, registrar: manifest.contracts.registrar },
      prover,
    });
    record("register (registration proof)", await carolEerc.register());
    record("deposit (first, new token)", await aliceEerc.deposit({ token: manifest.contracts.token, amount: 1_000_000n }));
    record("deposit (again)", await aliceEerc.deposit({ token: manifest.contracts.token, amount: 500_000n }));
    const tokenId = await usdcTokenId(chain, manifest);
    record("private transfer (first credit to the receiver)", await aliceEerc.transfer({ to: bob.address, amount: 250_000n, tokenId }));
    record("private transfer", await aliceEerc.transfer({ to: bob.address, amount: 1n, tokenId }));
    record("withdraw", await bobEerc.withdraw({ amount: 100_000n, tokenId }));

    const baseline = gas["baseline: USDC transfer (public amount)"]!;
    const ratio = Math.round((gas["private transfer"]! / baseline) * 10) / 10;
    log(`a private transfer costs ${ratio}x a plain USDC transfer`);
    const path = writeResults("gas.json", { gasUsed: gas, privateTransferToPlainTransfer: ratio });
    log(`results: ${path}`);
  } finally {
    await world.close();
  }
}
