import type { Point } from "./curve.js";
import type { EGCT } from "./elgamal.js";

export type PointStruct = { x: bigint; y: bigint };
export type EGCTStruct = { c1: PointStruct; c2: PointStruct };

export const pointToStruct = (p: readonly bigint[]): PointStruct => ({ x: p[0], y: p[1] });
export const structToPoint = (s: { readonly x: bigint; readonly y: bigint }): Point => [s.x, s.y];

export const egctToStruct = (ct: EGCT): EGCTStruct => ({
  c1: pointToStruct(ct.c1),
  c2: pointToStruct(ct.c2),
});
export const structToEGCT = (s: {
  readonly c1: { readonly x: bigint; readonly y: bigint };
  readonly c2: { readonly x: bigint; readonly y: bigint };
}): EGCT => ({ c1: structToPoint(s.c1), c2: structToPoint(s.c2) });

export type DecimalStrings<T> = T extends bigint
  ? string
  : T extends readonly unknown[]
    ? { [K in keyof T]: DecimalStrings<T[K]> }
    : T extends object
      ? { [K in keyof T]: DecimalStrings<T[K]> }
      : T;

/** Deep-maps every bigint to its decimal string (snarkjs input format). */
export function toDecimalStrings<T>(value: T): DecimalStrings<T> {
  const walk = (v: unknown): unknown => {
    if (typeof v === "bigint") return v.toString(10);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === "object") {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return walk(value) as DecimalStrings<T>;
}
