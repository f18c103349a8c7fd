import { afterAll, describe, expect, it } from "vitest";
import { mulBase } from "../src/eerc/curve.js";
import { encryptElGamal } from "../src/eerc/elgamal.js";
import { registrationInputs, transferInputs } from "../src/eerc/inputs.js";
import { Prover } from "../src/eerc/prover.js";

// Real proofs with the project's circuits. A payout agent proves for several payers at once on one
// Prover; each proof must carry its own sender's key, or the contract reverts it with
// InvalidSenderPublicKey (the sender key is public signals 0 and 1 of a transfer).

const prover = new Prover();
afterAll(() => prover.close());

const senders = [11n, 22n, 33n];
const auditorPk = mulBase(99n);
const receiverPk = mulBase(77n);

describe("Prover", () => {
  it("proofs started together each prove their own transfer, with their own sender key", async () => {
    const inputs = senders.map((sk, i) => {
      const balance = 1000n * BigInt(i + 1);
      return transferInputs({ sk, value: 10n, balance, balanceCT: encryptElGamal(balance, mulBase(sk)).ct, receiverPk, auditorPk });
    });
    const proofs = await Promise.all(inputs.map((b) => prover.prove("transfer", b.input)));
    for (const [i, sk] of senders.entries()) {
      expect(proofs[i]!.publicSignals.slice(0, 2)).toEqual(mulBase(sk).map(String));
      expect(await prover.verify("transfer", proofs[i]!)).toBe(true);
    }
  });

  it("a proof whose witness fails does not stop the ones queued behind it", async () => {
    const good = registrationInputs({ sk: 5n, address: "0x00000000000000000000000000000000000000a1", chainId: 31337n });
    const bad = { ...good.input, RegistrationHash: "1" };
    const [failed, proved] = await Promise.allSettled([prover.prove("registration", bad), prover.prove("registration", good.input)]);
    expect(failed.status).toBe("rejected");
    expect(proved.status === "fulfilled" && proved.value.publicSignals.slice(0, 2)).toEqual(good.publicKey.map(String));
  });
});
