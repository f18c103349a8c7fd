import type { Address, Hex } from "viem";

/** anvil's chain id: the only chain on which the well-known keys below are ever used. */
export const LOCAL_CHAIN_ID = 31337;
export const FUJI_CHAIN_ID = 43113;
export const CHAIN_NAMES: Record<number, string> = { [FUJI_CHAIN_ID]: "fuji", [LOCAL_CHAIN_ID]: "anvil", 43114: "avalanche" };

/** Circle's USDC on Fuji. */
export const FUJI_USDC: Address = "0x5425890298aed601595a70AB815c96711a31Bc65";

/** anvil's ten well-known accounts (mnemonic "test test … junk"): public, for local chains only. */
export const ANVIL_KEYS = [
  "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
  "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
  "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
  "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
  "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
  "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
  "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
  "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
] as const satisfies readonly Hex[];

/** Which of anvil's accounts plays which role in a local deployment. */
export const LOCAL_ROLES = { owner: 0, operator: 0, revenuePool: 7, relayer: 8, auditor: 9 } as const;

export type LocalRole = keyof typeof LOCAL_ROLES;

/** The well-known key of `role` on a local chain; undefined on any other, so no default key reaches a real chain. */
export function localKey(role: LocalRole, chainId: number): Hex | undefined {
  return chainId === LOCAL_CHAIN_ID ? ANVIL_KEYS[LOCAL_ROLES[role]] : undefined;
}
