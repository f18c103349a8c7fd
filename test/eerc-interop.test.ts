/**
 * Our EncryptedERC and Registrar have the interface of the audited eERC (`eerc-interface.md`):
 * every function with its outputs and mutability, every event with its indexed fields, every
 * struct. Always checked against the documented interface; with EERC_AUDITED_DIR set
 * (`npm run test:interop`), against the ABI compiled from that checkout too, where ours may add
 * only the listed ADDITIONS.
 */
import type { Abi, AbiParameter } from "viem";
import { describe, expect, it } from "vitest";
import { EncryptedERCAbi } from "../abis/EncryptedERCAbi.js";
import { RegistrarAbi } from "../abis/RegistrarAbi.js";
import { buildAudited } from "../scripts/interop/build-audited.js";

const type = (p: AbiParameter): string =>
  "components" in p && p.components ? `(${p.components.map(type).join(",")})${p.type.slice("tuple".length)}` : p.type;

/** Functions and events as signatures that include what the ABI says beyond the selector. */
function surface(abi: Abi): string[] {
  const out: string[] = [];
  for (const x of abi) {
    if (x.type === "function")
      out.push(`function ${x.name}(${x.inputs.map(type).join(",")}) ${x.stateMutability} returns (${x.outputs.map(type).join(",")})`);
    if (x.type === "event") out.push(`event ${x.name}(${x.inputs.map((i) => `${type(i)}${i.indexed ? " indexed" : ""}`).join(",")})`);
  }
  return out.sort();
}

const PROOF = (n: number) => `((uint256[2],uint256[2][2],uint256[2]),uint256[${n}])`;
const EGCT = "((uint256,uint256),(uint256,uint256))";
const BALANCE = `${EGCT},uint256,(uint256[7],uint256)[],uint256[7],uint256`;

/** The interface of `eerc-interface.md` (audited main from July 2025): what our tools call and index. */
const DOCUMENTED = {
  EncryptedERC: [
    `function balanceOf(address,uint256) view returns (${BALANCE})`,
    `function getBalanceFromTokenAddress(address,address) view returns (${BALANCE})`,
    "function setAuditorPublicKey(address) nonpayable returns ()",
    "function auditorPublicKey() view returns (uint256,uint256)",
    "function isAuditorKeySet() view returns (bool)",
    "function decimals() view returns (uint8)",
    "function isConverter() view returns (bool)",
    "function tokenIds(address) view returns (uint256)",
    "function tokenAddresses(uint256) view returns (address)",
    "function deposit(uint256,address,uint256[7]) nonpayable returns ()",
    "function deposit(uint256,address,uint256[7],bytes) nonpayable returns ()",
    `function transfer(address,uint256,${PROOF(32)},uint256[7]) nonpayable returns ()`,
    `function transfer(address,uint256,${PROOF(32)},uint256[7],bytes) nonpayable returns ()`,
    `function withdraw(uint256,${PROOF(16)},uint256[7]) nonpayable returns ()`,
    `function withdraw(uint256,${PROOF(16)},uint256[7],bytes) nonpayable returns ()`,
    `function privateMint(address,${PROOF(24)}) nonpayable returns ()`,
    `function privateMint(address,${PROOF(24)},bytes) nonpayable returns ()`,
    `function privateBurn(${PROOF(19)},uint256[7]) nonpayable returns ()`,
    `function privateBurn(address,${PROOF(19)},uint256[7],bytes) nonpayable returns ()`,
    "function sendEncryptedMetadata(address,bytes) nonpayable returns ()",
    "event AuditorChanged(address indexed,address indexed)",
    "event Deposit(address indexed,uint256,uint256,uint256)",
    "event PrivateTransfer(address indexed,address indexed,uint256[7],address indexed)",
    "event Withdraw(address indexed,uint256,uint256,uint256[7],address indexed)",
    "event PrivateMint(address indexed,uint256[7],address indexed)",
    "event PrivateBurn(address indexed,uint256[7],address indexed)",
    "event PrivateMessage(address indexed,address indexed,(address,address,string,bytes))",
  ],
  Registrar: [
    `function register(${PROOF(5)}) nonpayable returns ()`,
    "function isUserRegistered(address) view returns (bool)",
    "function getUserPublicKey(address) view returns (uint256[2])",
    "event Register(address indexed,(uint256,uint256))",
  ],
};

/**
 * What our EncryptedERC has beyond the audited interface: the paged balance reads
 * (`docs/security.md`, "Balance reads: a long pending queue"). Nothing else may differ.
 */
const ADDITIONS: Record<"EncryptedERC" | "Registrar", string[]> = {
  EncryptedERC: [
    `function balanceHeader(address,uint256) view returns (${EGCT},uint256,uint256[7],uint256,uint256)`,
    "function pendingPCTs(address,uint256,uint256,uint256) view returns ((uint256[7],uint256)[])",
  ],
  Registrar: [],
};

describe("the eERC interface", () => {
  it("our EncryptedERC and Registrar have every function and event of the documented interface", () => {
    expect(surface(EncryptedERCAbi as Abi)).toEqual(expect.arrayContaining(DOCUMENTED.EncryptedERC));
    expect(surface(RegistrarAbi as Abi)).toEqual(expect.arrayContaining(DOCUMENTED.Registrar));
  });

  it.runIf(process.env.EERC_AUDITED_DIR)(
    "is exactly the audited one (functions, outputs, events); an older audited version has a subset of it",
    async () => {
      const audited = await buildAudited(process.env.EERC_AUDITED_DIR!, { log: () => {} });
      for (const [name, ours] of [
        ["EncryptedERC", EncryptedERCAbi],
        ["Registrar", RegistrarAbi],
      ] as const) {
        const theirs = surface(audited.contracts[name].abi);
        const mine = surface(ours as Abi);
        expect(mine, name).toEqual(expect.arrayContaining(ADDITIONS[name]));
        const shared = mine.filter((f) => !ADDITIONS[name].includes(f));
        if (audited.messages) expect(shared, name).toEqual(theirs);
        else expect(shared, name).toEqual(expect.arrayContaining(theirs));
      }
    },
  );
});
