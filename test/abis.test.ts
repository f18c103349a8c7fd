import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EncryptedERCAbi } from "../abis/EncryptedERCAbi.js";
import { ProviderRegistryAbi } from "../abis/ProviderRegistryAbi.js";
import { RegistrarAbi } from "../abis/RegistrarAbi.js";
import { TestUSDCAbi } from "../abis/TestUSDCAbi.js";
import { UsageLedgerAbi } from "../abis/UsageLedgerAbi.js";
import { BUILD_DIR } from "../src/eerc/artifacts.js";

const compiled = (name: string) => JSON.parse(readFileSync(join(BUILD_DIR, "contracts", `${name}.json`), "utf8")).abi;

describe("committed ABIs", () => {
  it.each([
    ["EncryptedERC", EncryptedERCAbi],
    ["Registrar", RegistrarAbi],
    ["TestUSDC", TestUSDCAbi],
    ["ProviderRegistry", ProviderRegistryAbi],
    ["UsageLedger", UsageLedgerAbi],
  ] as const)("abis/%sAbi.ts matches the compiled contract", (name, abi) => {
    expect(JSON.parse(JSON.stringify(abi))).toEqual(compiled(name));
  });

  it("exposes the interface events and the bytes-message overloads", () => {
    const names = (type: string) => EncryptedERCAbi.filter((x) => x.type === type).map((x) => ("name" in x ? x.name : ""));
    expect(names("event")).toEqual(
      expect.arrayContaining(["Deposit", "Withdraw", "PrivateTransfer", "PrivateMint", "PrivateBurn", "PrivateMessage", "AuditorChanged"]),
    );
    for (const fn of ["transfer", "deposit", "withdraw", "privateMint", "privateBurn"]) {
      expect(names("function").filter((n) => n === fn)).toHaveLength(2);
    }
  });
});
