import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Address } from "viem";
import { expect } from "vitest";

/** The API's JSON as the real server answered it, recorded by test/api-recording.test.ts. */
export const FIXTURES = join(import.meta.dirname, "fixtures", "api");

export const recorded = (file: "provider-earnings.json" | "audit-totals.json" | "recording.json"): unknown =>
  JSON.parse(readFileSync(join(FIXTURES, file), "utf8"));

/** What the recorded world did, from the chain's side: the truth the unit tests decrypt against. */
export type Recording = {
  /** Throwaway eERC keys of a local chain, so the unit tests can decrypt. */
  providerSk: string;
  auditorSk: string;
  provider: Address;
  /** Each balance row: kind and the balance after it, read from the chain. */
  rows: { kind: string; balanceMicro: string }[];
  pendingMicro: string;
  /** Auditor totals by kind over the whole history. */
  audit: Record<string, string>;
  cycles: { cycle: number; totalMicro: string }[];
};

/**
 * The shape of a JSON value, with the wire formats named: a 32-byte hash, an address, a decimal
 * string, other strings, numbers, booleans and null. Arrays take the shape of their elements
 * (all of them must agree), objects the shapes of their fields.
 */
export type Shape = string | Shape[] | { [key: string]: Shape };

export function shapeOf(value: unknown): Shape {
  if (value === null) return "null";
  if (Array.isArray(value)) {
    const shapes = [...new Set(value.map((v) => JSON.stringify(shapeOf(v))))];
    return shapes.length === 0 ? [] : [JSON.parse(shapes.length === 1 ? shapes[0]! : JSON.stringify(`mixed ${shapes.join(" | ")}`))];
  }
  if (typeof value === "object") {
    const out: Record<string, Shape> = {};
    for (const key of Object.keys(value as object).sort()) out[key] = shapeOf((value as Record<string, unknown>)[key]);
    return out;
  }
  if (typeof value === "string") {
    if (/^0x[0-9a-fA-F]{64}$/.test(value)) return "hash";
    if (/^0x[0-9a-fA-F]{40}$/.test(value)) return "address";
    if (/^\d+$/.test(value)) return "decimal";
    return "string";
  }
  return typeof value;
}

/**
 * Fails where `actual` has a field `reference` lacks, lacks one it has, or gives it another shape.
 * With `nullable`, a null or an empty array on either side stands for any shape (a fixture that
 * leaves a field empty still has to name it).
 */
export function expectSameShape(actual: unknown, reference: unknown, options: { nullable?: boolean } = {}): void {
  const mismatches: string[] = [];
  const walk = (a: Shape, r: Shape, path: string) => {
    if (options.nullable && (a === "null" || r === "null" || (Array.isArray(a) && a.length === 0) || (Array.isArray(r) && r.length === 0)))
      return;
    if (typeof a === "string" || typeof r === "string") {
      if (JSON.stringify(a) !== JSON.stringify(r))
        mismatches.push(`${path}: ${JSON.stringify(a)} where the reference has ${JSON.stringify(r)}`);
      return;
    }
    if (Array.isArray(a) !== Array.isArray(r)) {
      mismatches.push(`${path}: ${Array.isArray(a) ? "an array" : "an object"} where the reference has the other`);
      return;
    }
    if (Array.isArray(a) && Array.isArray(r)) {
      if (a.length === 0 || r.length === 0) {
        if (a.length !== r.length) mismatches.push(`${path}: an empty array where the reference has items, or the reverse`);
        return;
      }
      walk(a[0]!, r[0]!, `${path}[]`);
      return;
    }
    const ao = a as Record<string, Shape>;
    const ro = r as Record<string, Shape>;
    for (const key of new Set([...Object.keys(ao), ...Object.keys(ro)])) {
      if (!(key in ao)) mismatches.push(`${path}.${key}: missing`);
      else if (!(key in ro)) mismatches.push(`${path}.${key}: not in the reference`);
      else walk(ao[key]!, ro[key]!, `${path}.${key}`);
    }
  };
  walk(shapeOf(actual), shapeOf(reference), "$");
  expect(mismatches).toEqual([]);
}
