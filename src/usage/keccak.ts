import { keccak_256 } from "@noble/hashes/sha3.js";
import { createKeccak, type IHasher } from "hash-wasm";

// Hashing call records dominates batch ingestion; the WASM keccak is about 6x faster than the
// pure-JS one. It loads asynchronously, so until it is ready the (identical) JS one answers.
let wasm: IHasher | undefined;
const ready = createKeccak(256).then(
  (hasher) => {
    wasm = hasher;
  },
  () => undefined,
);

/** Resolves once the fast keccak is loaded (hashing works before that, just slower). */
export function keccakReady(): Promise<void> {
  return ready;
}

/** keccak256 (Ethereum's, not SHA3-256) of `data`. */
export function keccak256Bytes(data: Uint8Array): Uint8Array {
  if (!wasm) return keccak_256(data);
  wasm.init();
  wasm.update(data);
  return wasm.digest("binary");
}
