import { type Hex, isHex } from "viem";
import { EmptyBatchError, MerkleError } from "./errors.js";
import { keccak256Bytes } from "./keccak.js";

/**
 * Sorted-pair keccak256 Merkle tree. Leaves are sorted first, so the root depends only on the
 * set of leaves, not on the order records were collected in. A node is
 * keccak256(min(a, b) ‖ max(a, b)); an unpaired node is carried up unchanged. Proofs verify with
 * OpenZeppelin's `MerkleProof.verify`.
 */
export type MerkleTree = {
  root: Hex;
  /** layers[0] = the sorted leaves, last layer = [root] */
  layers: Hex[][];
};

const normalise = (h: Hex): Hex => h.toLowerCase() as Hex;

function checkHash(h: unknown, what: string): Hex {
  if (typeof h !== "string" || !isHex(h, { strict: true }) || h.length !== 66) {
    throw new MerkleError(`${what} must be a 32-byte hex string, got ${String(h)}`);
  }
  return normalise(h);
}

const bytesOf = (h: Hex): Buffer => Buffer.from(h.slice(2), "hex");
const hexOf = (b: Uint8Array): Hex => `0x${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex")}`;

/** keccak256(min ‖ max) of two 32-byte nodes as bytes (byte order is numeric order). */
function hashPairBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const pair = new Uint8Array(64);
  const [lo, hi] = Buffer.compare(a, b) < 0 ? [a, b] : [b, a];
  pair.set(lo, 0);
  pair.set(hi, 32);
  return keccak256Bytes(pair);
}

export function hashPair(a: Hex, b: Hex): Hex {
  return hexOf(hashPairBytes(bytesOf(normalise(a)), bytesOf(normalise(b))));
}

/** Builds the tree; an empty leaf set and a repeated leaf are rejected. */
export function buildMerkleTree(leaves: readonly Hex[]): MerkleTree {
  if (leaves.length === 0) throw new EmptyBatchError();
  const sorted = leaves.map((l, i) => checkHash(l, `leaf ${i}`)).sort();
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) throw new MerkleError(`leaf ${sorted[i]} appears more than once`);
  }
  const layers: Hex[][] = [sorted];
  let level: Uint8Array[] = sorted.map(bytesOf);
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? hashPairBytes(level[i], level[i + 1]) : level[i]);
    layers.push(next.map((n, i) => (n === level[2 * i] ? layers[layers.length - 1][2 * i] : hexOf(n))));
    level = next;
  }
  return { root: layers[layers.length - 1][0], layers };
}

export function merkleRoot(leaves: readonly Hex[]): Hex {
  return buildMerkleTree(leaves).root;
}

/** Sibling hashes from the leaf up to the root. */
export function merkleProof(tree: MerkleTree, leaf: Hex): Hex[] {
  const target = checkHash(leaf, "leaf");
  let index = tree.layers[0].indexOf(target);
  if (index < 0) throw new MerkleError(`leaf ${target} is not in the tree`);
  const proof: Hex[] = [];
  for (const level of tree.layers.slice(0, -1)) {
    const sibling = index ^ 1;
    if (sibling < level.length) proof.push(level[sibling]);
    index >>= 1;
  }
  return proof;
}

export function verifyMerkleProof(leaf: Hex, proof: readonly Hex[], root: Hex): boolean {
  let node = checkHash(leaf, "leaf");
  for (const [i, sibling] of proof.entries()) node = hashPair(node, checkHash(sibling, `proof[${i}]`));
  return node === checkHash(root, "root");
}
