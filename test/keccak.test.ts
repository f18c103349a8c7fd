import { keccak_256 } from "@noble/hashes/sha3.js";
import { describe, expect, it } from "vitest";
import { keccak256Bytes, keccakReady } from "../src/usage/keccak.js";

describe("record hashing keccak", () => {
  it("the WASM keccak gives Ethereum's keccak256, as the JS one does", async () => {
    await keccakReady();
    expect(Buffer.from(keccak256Bytes(new Uint8Array())).toString("hex")).toBe(
      "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
    );
    for (let n = 0; n < 600; n += 37) {
      const data = new Uint8Array(n).map((_, i) => (i * 131 + n) & 0xff);
      expect(keccak256Bytes(data)).toEqual(keccak_256(data));
    }
  });
});
