import { describe, expect, it } from "vitest";
import {
  allocatePool,
  earnings,
  feeMicro,
  InvalidRevenueInputError,
  OverpaidError,
  owed,
  type PricingLookup,
  type ProviderId,
  priceLines,
  type Revenue,
  type RevenueLine,
  UnallocatablePoolError,
  UnknownProviderPricingError,
} from "../src/revenue/index.js";
import {
  amountOfCalls,
  freePool,
  InvalidPricingError,
  type Pricing,
  PricingModel,
  perCall,
  priceOfCall,
  providerIdOf,
  type Tier,
  tiered,
  type UsageLine,
} from "../src/usage/index.js";

/** mulberry32 with helpers; every property test below runs from a fixed seed. */
function prng(seed: number) {
  let a = seed >>> 0;
  const u32 = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const int = (n: number) => u32() % n;
  const big = (bits: number): bigint => {
    let v = 0n;
    for (let b = 0; b < bits; b += 32) v = (v << 32n) | BigInt(u32());
    return v & ((1n << BigInt(bits)) - 1n);
  };
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const shuffle = <T>(xs: T[]): T[] => {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = int(i + 1);
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  };
  const randomId = (): ProviderId => `0x${big(256).toString(16).padStart(64, "0")}`;
  return { int, big, pick, shuffle, randomId };
}
type Rng = ReturnType<typeof prng>;

/** A plain assertion for the inner loops of property tests, where `expect` per check is too slow. */
function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`property violated: ${what}`);
}

const id = (n: number): ProviderId => `0x${n.toString(16).padStart(64, "0")}`;
const [A, B, C, D] = [id(0xa), id(0xb), id(0xc), id(0xd)];
const OPEN = (1n << 64n) - 1n;
/** Tiers as [upToCalls, priceMicro] pairs. */
const tiers = (...pairs: [bigint, bigint][]): Pricing => tiered(pairs.map(([upToCalls, priceMicro]) => ({ upToCalls, priceMicro })));
const line = (period: number, providerId: ProviderId, billableCalls: bigint): RevenueLine => ({ period, providerId, billableCalls });
const values = (m: Map<ProviderId, bigint>) => [...m.values()];
const sum = (xs: Iterable<bigint>) => {
  let s = 0n;
  for (const x of xs) s += x;
  return s;
};

/** Everything in a result, in iteration order, so equal snapshots mean equal output in equal order. */
function snapshot(r: Revenue) {
  return {
    perProvider: [...r.perProvider],
    platformFeeMicro: r.platformFeeMicro,
    unallocatedPoolMicro: r.unallocatedPoolMicro,
    byPeriod: [...r.byPeriod].map(([period, p]) => [period, { ...p, providers: [...p.providers] }]),
  };
}

describe("allocatePool", () => {
  it("gives the leftover micro-unit to the smallest provider id among equal remainders, whatever the map order", () => {
    for (const order of [
      [A, B, C],
      [C, B, A],
      [B, C, A],
    ]) {
      const shares = allocatePool(10n, new Map(order.map((k) => [k, 1n])));
      expect([...shares]).toEqual([
        [A, 4n],
        [B, 3n],
        [C, 3n],
      ]);
    }
  });

  it("splits exactly when the shares are whole, and otherwise by largest remainder", () => {
    expect(
      values(
        allocatePool(
          100n,
          new Map([
            [A, 1n],
            [B, 3n],
          ]),
        ),
      ),
    ).toEqual([25n, 75n]);
    // quotas 1.4, 2.1, 3.5: floors 1, 2, 3; the one leftover unit goes to the largest remainder (0.5)
    expect(
      values(
        allocatePool(
          7n,
          new Map([
            [A, 2n],
            [B, 3n],
            [C, 5n],
          ]),
        ),
      ),
    ).toEqual([1n, 2n, 4n]);
  });

  it("may give a share below 1 micro-USDC either 0 or 1, as the remainders rank", () => {
    // quotas 0.002 and 1.998: the leftover unit goes to the larger remainder, 0.998
    expect(
      values(
        allocatePool(
          2n,
          new Map([
            [A, 1n],
            [B, 1000n],
          ]),
        ),
      ),
    ).toEqual([0n, 2n]);
    // quotas 6.31, 6.31, 0.37: the leftover unit goes to 0.37
    expect(
      values(
        allocatePool(
          13n,
          new Map([
            [A, 17n],
            [B, 17n],
            [C, 1n],
          ]),
        ),
      ),
    ).toEqual([6n, 6n, 1n]);
    expect(
      values(
        allocatePool(
          1n,
          new Map([
            [C, 5n],
            [B, 5n],
            [A, 5n],
          ]),
        ),
      ),
    ).toEqual([1n, 0n, 0n]);
  });

  it("shows the Alabama paradox of largest remainder: a larger pool can give one provider less", () => {
    const weights = new Map([
      [A, 17n],
      [B, 17n],
      [C, 1n],
    ]);
    expect(values(allocatePool(13n, weights))).toEqual([6n, 6n, 1n]);
    expect(values(allocatePool(14n, weights))).toEqual([7n, 7n, 0n]);
  });

  it("shows that one provider's extra weight can raise another's share", () => {
    expect(
      values(
        allocatePool(
          8n,
          new Map([
            [A, 5n],
            [B, 3n],
            [C, 7n],
          ]),
        ),
      ),
    ).toEqual([3n, 1n, 4n]);
    expect(
      values(
        allocatePool(
          8n,
          new Map([
            [A, 7n],
            [B, 3n],
            [C, 7n],
          ]),
        ),
      ),
    ).toEqual([3n, 2n, 3n]);
  });

  it("keeps zero weights at 0 and in the result", () => {
    expect([
      ...allocatePool(
        5n,
        new Map([
          [B, 0n],
          [A, 2n],
        ]),
      ),
    ]).toEqual([
      [A, 5n],
      [B, 0n],
    ]);
    expect([
      ...allocatePool(
        0n,
        new Map([
          [B, 0n],
          [A, 2n],
        ]),
      ),
    ]).toEqual([
      [A, 0n],
      [B, 0n],
    ]);
    expect(allocatePool(0n, new Map()).size).toBe(0);
  });

  it("refuses a positive pool with nothing to split it by", () => {
    expect(() => allocatePool(1n, new Map([[A, 0n]]))).toThrow(UnallocatablePoolError);
    expect(() => allocatePool(1n, new Map())).toThrow(UnallocatablePoolError);
  });

  it("is exact for pools beyond 2^64", () => {
    const pool = (1n << 100n) + 6n; // ≡ 1 (mod 3)
    const shares = allocatePool(
      pool,
      new Map([
        [A, 1n],
        [B, 1n],
        [C, 1n],
      ]),
    );
    expect(sum(shares.values())).toBe(pool);
    expect(values(shares)).toEqual([pool / 3n + 1n, pool / 3n, pool / 3n]);
  });

  it("refuses malformed input", () => {
    expect(() => allocatePool(-1n, new Map([[A, 1n]]))).toThrow(InvalidRevenueInputError);
    expect(() => allocatePool(1 as unknown as bigint, new Map([[A, 1n]]))).toThrow(InvalidRevenueInputError);
    expect(() => allocatePool(1n, new Map([[A, -1n]]))).toThrow(InvalidRevenueInputError);
    expect(() => allocatePool(1n, new Map([[A, 1 as unknown as bigint]]))).toThrow(InvalidRevenueInputError);
    expect(() => allocatePool(1n, new Map([[`0x${"AB".repeat(32)}` as ProviderId, 1n]]))).toThrow(InvalidRevenueInputError);
    expect(() => allocatePool(1n, new Map([["0x01" as ProviderId, 1n]]))).toThrow(InvalidRevenueInputError);
  });
});

describe("allocatePool properties", () => {
  const randomPool = (r: Rng): bigint =>
    r.pick([() => 0n, () => 1n, () => BigInt(r.int(1000)), () => r.big(32), () => r.big(64), () => (1n << 64n) + r.big(100)])();

  const randomWeights = (r: Rng, n: number): bigint[] => {
    const mode = r.int(5);
    const equal = r.big(r.pick([4, 32, 80])) + 1n;
    return Array.from({ length: n }, () => {
      switch (mode) {
        case 0:
          return BigInt(r.int(4)); // many zeros and ties
        case 1:
          return equal;
        case 2:
          return r.int(3) === 0 ? 0n : equal * BigInt(1 + r.int(3));
        case 3:
          return r.big(64);
        default:
          return r.int(4) === 0 ? 0n : r.big(r.pick([8, 20, 40]));
      }
    });
  };

  const randomSize = (r: Rng) => 1 + r.int(r.pick([5, 20, 20, 100, 500]));

  it("sums to the pool, stays within 1 micro-USDC of the exact share and follows largest remainder, over thousands of cases", () => {
    const r = prng(0xa110c);
    let cases = 0;
    for (let t = 0; t < 3000; t++) {
      const n = randomSize(r);
      const ids = Array.from({ length: n }, () => r.randomId());
      const w = randomWeights(r, n);
      const pool = randomPool(r);
      const weights = new Map(ids.map((k, i) => [k, w[i]]));
      const total = sum(w);
      if (pool > 0n && total === 0n) {
        expect(() => allocatePool(pool, weights)).toThrow(UnallocatablePoolError);
        continue;
      }
      cases++;
      const shares = allocatePool(pool, weights);
      expect(shares.size).toBe(n);
      expect(sum(shares.values())).toBe(pool);
      const sorted = [...ids].sort();
      expect([...shares.keys()]).toEqual(sorted);

      const ranked: { key: ProviderId; rem: bigint; extra: bigint }[] = [];
      for (const [k, s] of shares) {
        const wk = weights.get(k)!;
        check(s >= 0n, "negative share");
        if (wk === 0n) {
          check(s === 0n, "a zero weight got a share");
          continue;
        }
        // |s − pool·w/W| < 1, and s is the floor or the ceiling of the exact share
        const diff = s * total - pool * wk;
        check(diff > -total && diff < total, "more than 1 micro-USDC from the exact share");
        const floor = (pool * wk) / total;
        const rem = (pool * wk) % total;
        check(s === floor || (rem !== 0n && s === floor + 1n), "neither the floor nor the ceiling");
        if (rem !== 0n) ranked.push({ key: k, rem, extra: s - floor });
      }
      // the units above the floors go to a prefix of (remainder descending, id ascending)
      ranked.sort((x, y) => (x.rem > y.rem ? -1 : x.rem < y.rem ? 1 : x.key < y.key ? -1 : 1));
      const firstWithout = ranked.findIndex((x) => x.extra === 0n);
      if (firstWithout >= 0)
        check(
          ranked.slice(firstWithout).every((x) => x.extra === 0n),
          "extra units not on the largest remainders",
        );

      // order of the map does not matter
      const shuffled = new Map(r.shuffle([...weights]));
      expect([...allocatePool(pool, shuffled)]).toEqual([...shares]);

      // more weight never gets less than less weight; equal weights differ by at most 1, the smaller id first
      const byWeight = [...shares].map(([k, s]) => ({ k, s, w: weights.get(k)! }));
      for (let i = 0; i + 1 < byWeight.length && i < 60; i++) {
        for (let j = i + 1; j < byWeight.length && j < 60; j++) {
          const [x, y] = [byWeight[i], byWeight[j]];
          if (x.w > y.w) check(x.s >= y.s, "more weight, smaller share");
          if (x.w < y.w) check(x.s <= y.s, "less weight, larger share");
          if (x.w === y.w) check(x.s - y.s === 0n || x.s - y.s === 1n, "equal weights, shares not within 1 with the smaller id first");
        }
      }
    }
    expect(cases).toBeGreaterThan(2500);
  });

  it("depends only on the ratios of the weights", () => {
    const r = prng(0x5ca1e);
    for (let t = 0; t < 500; t++) {
      const n = randomSize(r);
      const weights = new Map(Array.from({ length: n }, () => [r.randomId(), BigInt(1 + r.int(50))] as const));
      const pool = randomPool(r);
      const k = r.pick([2n, 3n, 7n, 1n << 70n]);
      const scaled = new Map([...weights].map(([key, w]) => [key, w * k]));
      expect([...allocatePool(pool, scaled)]).toEqual([...allocatePool(pool, weights)]);
    }
  });

  it("never gives a provider less for more weight when the pool and the other weights are fixed", () => {
    const r = prng(0x3030);
    for (let t = 0; t < 2000; t++) {
      const n = randomSize(r);
      const ids = Array.from({ length: n }, () => r.randomId());
      const w = randomWeights(r, n);
      const pool = randomPool(r);
      const who = r.int(n);
      const before = new Map(ids.map((k, i) => [k, i === who ? w[i] + 1n : w[i]]));
      const after = new Map(before);
      after.set(ids[who], before.get(ids[who])! + r.pick([1n, BigInt(1 + r.int(100)), r.big(64) + 1n]));
      expect(allocatePool(pool, after).get(ids[who])! >= allocatePool(pool, before).get(ids[who])!).toBe(true);
    }
  });
});

describe("tiered pricing", () => {
  it("walks the tiers with the period's cumulative billable calls; calls beyond the last tier are free", () => {
    const quota = [
      { upToCalls: 1000n, priceMicro: 0n },
      { upToCalls: OPEN, priceMicro: 5n },
    ];
    expect(amountOfCalls(tiered(quota), 0n)).toBe(0n);
    expect(amountOfCalls(tiered(quota), 1000n)).toBe(0n);
    expect(amountOfCalls(tiered(quota), 1001n)).toBe(5n);
    expect(amountOfCalls(tiered(quota), 1300n)).toBe(1500n);
    const capped = [
      { upToCalls: 100n, priceMicro: 2n },
      { upToCalls: 200n, priceMicro: 3n },
    ];
    expect(amountOfCalls(tiered(capped), 150n)).toBe(350n);
    expect(amountOfCalls(tiered(capped), 500n)).toBe(500n);
  });

  it("equals the sum of the meter's per-call prices", () => {
    const r = prng(0x7135);
    for (let t = 0; t < 300; t++) {
      const list: Tier[] = [];
      let upTo = 0n;
      for (let k = 1 + r.int(4); k > 0; k--) {
        upTo += BigInt(1 + r.int(800));
        list.push({ upToCalls: upTo, priceMicro: BigInt(r.int(3) === 0 ? 0 : r.int(1000)) });
      }
      if (r.int(2) === 0) list.push({ upToCalls: OPEN, priceMicro: BigInt(r.int(100)) });
      const pricing = tiered(list);
      const n = r.int(4000);
      let expected = 0n;
      for (let i = 0; i < n; i++) expected += priceOfCall(pricing, i);
      expect(amountOfCalls(pricing, BigInt(n))).toBe(expected);
    }
  });
});

describe("priceLines", () => {
  it("prices per call from the summed lines of a (period, provider), fee rounded down", () => {
    const rev = priceLines({ lines: [line(202501, A, 100n), line(202501, A, 43n)], pricing: new Map([[A, perCall(7n)]]), feeBps: 250 });
    // 143 × 7 = 1001; fee floor(1001 × 2.5%) = floor(25.025) = 25, the 0.025 stays with the provider
    expect(rev.byPeriod.get(202501)!.providers.get(A)).toEqual({
      model: "per_call",
      billableCalls: 143n,
      grossMicro: 1001n,
      feeMicro: 25n,
      netMicro: 976n,
    });
    expect(rev.perProvider.get(A)).toEqual({ grossMicro: 1001n, feeMicro: 25n, netMicro: 976n });
    expect(rev.platformFeeMicro).toBe(25n);
    expect(feeMicro(1001n, 250n)).toBe(25n);
  });

  it("restarts tiers each period and prices the provider's total over all its lines of the period", () => {
    const pricing = new Map([[A, tiers([1000n, 0n], [OPEN, 5n])]]);
    const rev = priceLines({ lines: [line(202501, A, 600n), line(202502, A, 900n), line(202501, A, 700n)], pricing, feeBps: 0 });
    expect(rev.byPeriod.get(202501)!.providers.get(A)!.grossMicro).toBe(1500n);
    expect(rev.byPeriod.get(202502)!.providers.get(A)!.grossMicro).toBe(0n);
    expect(rev.perProvider.get(A)).toEqual({ grossMicro: 1500n, feeMicro: 0n, netMicro: 1500n });
  });

  it("splits the pool after its fee by billable calls × pool weight", () => {
    const pricing = new Map([
      [A, freePool(1)],
      [B, freePool(2)],
      [C, freePool(9)],
      [D, perCall(10n)],
    ]);
    const lines = [line(202501, A, 300n), line(202501, B, 100n), line(202501, C, 0n), line(202501, D, 10n)];
    const rev = priceLines({ lines, pricing, pools: new Map([[202501, 1_000_001n]]), feeBps: 250 });
    const p = rev.byPeriod.get(202501)!;
    // pool fee floor(25,000.025) = 25,000; 975,001 split 300 : 200 → 585,000.6 and 390,000.4
    expect(p.poolFeeMicro).toBe(25_000n);
    expect(p.poolUsageWeight).toBe(500n);
    expect(p.providers.get(A)).toEqual({ model: "free_pool", billableCalls: 300n, grossMicro: 585_001n, feeMicro: 0n, netMicro: 585_001n });
    expect(p.providers.get(B)!.netMicro).toBe(390_000n);
    expect(p.providers.get(C)!.netMicro).toBe(0n);
    expect(p.providers.get(D)).toEqual({ model: "per_call", billableCalls: 10n, grossMicro: 100n, feeMicro: 2n, netMicro: 98n });
    expect(p.platformFeeMicro).toBe(25_002n);
    expect(p.unallocatedPoolMicro).toBe(0n);
    expect([...p.providers.keys()]).toEqual([A, B, C, D]);
  });

  it("leaves a pool without free-pool usage with the platform, in periods with and without lines", () => {
    const pricing = new Map([
      [A, freePool(1)],
      [B, perCall(3n)],
    ]);
    const lines = [line(202502, A, 0n), line(202502, B, 5n)];
    const pools = new Map([
      [202502, 1000n],
      [202501, 77n],
    ]);
    const rev = priceLines({ lines, pricing, pools, feeBps: 1000 });
    expect([...rev.byPeriod.keys()]).toEqual([202501, 202502]);
    const jan = rev.byPeriod.get(202501)!;
    expect(jan.providers.size).toBe(0);
    expect([jan.poolFeeMicro, jan.unallocatedPoolMicro]).toEqual([7n, 70n]);
    const feb = rev.byPeriod.get(202502)!;
    expect([feb.poolFeeMicro, feb.unallocatedPoolMicro, feb.platformFeeMicro]).toEqual([100n, 900n, 101n]);
    expect(feb.providers.get(A)!.netMicro).toBe(0n);
    expect(rev.unallocatedPoolMicro).toBe(970n);
    expect(rev.platformFeeMicro).toBe(108n);
  });

  it("pays nothing to an inactive provider and leaves it out of the pool weights", () => {
    const lookup: PricingLookup = (providerId, period) => (providerId === B && period === 202502 ? null : freePool(1));
    const lines = [line(202501, A, 1n), line(202501, B, 1n), line(202502, A, 1n), line(202502, B, 1n)];
    const rev = priceLines({
      lines,
      pricing: lookup,
      pools: new Map([
        [202501, 10n],
        [202502, 10n],
      ]),
      feeBps: 0,
    });
    expect(values(earnings(rev))).toEqual([15n, 5n]);
    expect(rev.byPeriod.get(202502)!.providers.get(B)).toEqual({
      model: "inactive",
      billableCalls: 1n,
      grossMicro: 0n,
      feeMicro: 0n,
      netMicro: 0n,
    });
  });

  it("takes each period's pricing from a lookup function", () => {
    const lookup: PricingLookup = (_id, period) => (period < 202502 ? perCall(2n) : tiers([10n, 0n], [OPEN, 1n]));
    const rev = priceLines({ lines: [line(202501, A, 20n), line(202502, A, 20n)], pricing: lookup, feeBps: 0 });
    expect(rev.perProvider.get(A)!.netMicro).toBe(40n + 10n);
  });

  it("refuses usage it cannot price and malformed input", () => {
    const pricing = new Map([[A, perCall(1n)]]);
    const ok = { lines: [line(202501, A, 1n)], pricing, feeBps: 0 };
    expect(() => priceLines({ ...ok, lines: [line(202501, B, 1n)] })).toThrow(UnknownProviderPricingError);
    try {
      priceLines({ ...ok, lines: [line(202503, B, 1n)] });
    } catch (e) {
      expect(e).toMatchObject({ code: "UNKNOWN_PROVIDER_PRICING", providerId: B, period: 202503 });
    }
    for (const feeBps of [-1, 10_001, 2.5, Number.NaN, 10_001n]) {
      expect(() => priceLines({ ...ok, feeBps })).toThrow(InvalidRevenueInputError);
    }
    expect(() => priceLines({ ...ok, feeBps: 10_000n })).not.toThrow();
    expect(() => priceLines({ ...ok, lines: [line(202501, A, -1n)] })).toThrow(InvalidRevenueInputError);
    expect(() => priceLines({ ...ok, lines: [line(202501, A, 1 as unknown as bigint)] })).toThrow(InvalidRevenueInputError);
    for (const period of [0, -202501, 2025.5, Number.NaN]) {
      expect(() => priceLines({ ...ok, lines: [line(period, A, 1n)] })).toThrow(InvalidRevenueInputError);
    }
    expect(() => priceLines({ ...ok, lines: [line(202501, A, 1n), line(2.5, A, 1n)] })).toThrow(InvalidRevenueInputError);
    expect(() => priceLines({ ...ok, lines: [line(202501, `0x${"AA".repeat(32)}`, 1n)] })).toThrow(InvalidRevenueInputError);
    expect(() => priceLines({ ...ok, pools: new Map([[202501, -1n]]) })).toThrow(InvalidRevenueInputError);
    expect(() => priceLines({ ...ok, pools: new Map([[0, 1n]]) })).toThrow(InvalidRevenueInputError);
    expect(() => priceLines({ ...ok, pricing: new Map([[A, perCall(0n)]]) })).toThrow(InvalidPricingError);
    expect(() => priceLines({ ...ok, pricing: new Map([[A.replace("a", "A") as ProviderId, perCall(1n)]]) })).toThrow(
      InvalidRevenueInputError,
    );
  });

  it("accepts ids from providerIdOf and whole usage lines", () => {
    const weather = providerIdOf("weather");
    const decrypted: UsageLine & { period: number } = {
      period: 202501,
      providerId: weather,
      calls: 12n,
      billableCalls: 10n,
      amountMicro: 999n,
      revenueMicro: 0n,
    };
    const rev = priceLines({
      lines: [decrypted],
      pricing: new Map([[weather, perCall(3n)]]),
      feeBps: 0,
    });
    expect(earnings(rev).get(weather)).toBe(30n);
  });
});

describe("priceLines properties", () => {
  const PERIODS = [202411, 202412, 202501, 202502, 202503];

  function randomPricing(r: Rng): Pricing | null {
    switch (r.int(7)) {
      case 0:
        return null;
      case 1:
      case 2:
        return perCall(r.int(10) === 0 ? OPEN : BigInt(1 + r.int(1000)));
      case 3:
      case 4: {
        const pairs: [bigint, bigint][] = [];
        let upTo = 0n;
        for (let k = 1 + r.int(4); k > 0; k--) {
          upTo += BigInt(1 + r.int(3000));
          pairs.push([upTo, BigInt(r.int(3) === 0 ? 0 : r.int(500))]);
        }
        if (r.int(2) === 0) pairs.push([OPEN, BigInt(r.int(50))]);
        return tiers(...pairs);
      }
      default:
        return freePool(r.int(10) === 0 ? 0xffffffff : 1 + r.int(10));
    }
  }

  function randomCase(r: Rng) {
    const ids = Array.from({ length: 1 + r.int(40) }, () => r.randomId());
    const pricing = new Map(ids.map((k) => [k, randomPricing(r)]));
    const periods = r.shuffle([...PERIODS]).slice(0, 1 + r.int(4));
    const lines: RevenueLine[] = Array.from({ length: r.int(200) }, () =>
      line(r.pick(periods), r.pick(ids), r.int(5) === 0 ? 0n : BigInt(r.int(2000))),
    );
    const pools = new Map<number, bigint>();
    for (const p of PERIODS) {
      if (r.int(3) > 0)
        pools.set(p, r.pick([() => 0n, () => 1n, () => BigInt(r.int(10_000)), () => r.big(48), () => (1n << 64n) + r.big(90)])());
    }
    const feeBps = r.pick([() => 0, () => 10_000, () => r.int(10_001), () => 250]);
    return { ids, pricing, lines, pools, feeBps: feeBps() };
  }

  it("conserves every micro-USDC, splits pools as allocatePool does and ignores line order and line splitting", () => {
    const r = prng(0x9a1d);
    for (let t = 0; t < 400; t++) {
      const { pricing, lines, pools, feeBps } = randomCase(r);
      const bps = BigInt(feeBps);
      const rev = priceLines({ lines, pricing, pools, feeBps });

      const seen = new Set(lines.map((l) => l.providerId));
      expect([...rev.perProvider.keys()]).toEqual([...seen].sort());

      for (const [period, p] of rev.byPeriod) {
        let commercial = 0n;
        let net = 0n;
        let commercialFees = 0n;
        const poolWeights = new Map<ProviderId, bigint>();
        for (const [k, e] of p.providers) {
          for (const v of [e.grossMicro, e.feeMicro, e.netMicro, e.billableCalls]) expect(v >= 0n).toBe(true);
          expect(e.netMicro).toBe(e.grossMicro - e.feeMicro);
          net += e.netMicro;
          const pr = pricing.get(k)!;
          if (e.model === "per_call" || e.model === "tiered") {
            commercial += e.grossMicro;
            commercialFees += e.feeMicro;
            expect(e.grossMicro).toBe(
              pr.model === PricingModel.PerCall ? e.billableCalls * pr.pricePerCallMicro : amountOfCalls(pr, e.billableCalls),
            );
            expect(e.feeMicro * 10_000n <= e.grossMicro * bps && e.grossMicro * bps < (e.feeMicro + 1n) * 10_000n).toBe(true);
          } else if (e.model === "free_pool") {
            expect(e.feeMicro).toBe(0n);
            poolWeights.set(k, e.billableCalls * BigInt(pr.poolWeight));
          } else {
            expect(pr).toBeNull();
            expect(e.grossMicro).toBe(0n);
          }
        }
        const pool = pools.get(period) ?? 0n;
        expect(p.poolMicro).toBe(pool);
        expect(p.poolFeeMicro).toBe((pool * bps) / 10_000n);
        expect(p.platformFeeMicro).toBe(commercialFees + p.poolFeeMicro);
        expect(commercial + pool).toBe(net + p.platformFeeMicro + p.unallocatedPoolMicro);
        const distributable = pool - p.poolFeeMicro;
        if (sum(poolWeights.values()) === 0n) {
          expect(p.unallocatedPoolMicro).toBe(distributable);
        } else {
          expect(p.unallocatedPoolMicro).toBe(0n);
          for (const [k, s] of allocatePool(distributable, poolWeights)) expect(p.providers.get(k)!.netMicro).toBe(s);
        }
      }
      expect(rev.platformFeeMicro).toBe(sum([...rev.byPeriod.values()].map((p) => p.platformFeeMicro)));
      expect(rev.unallocatedPoolMicro).toBe(sum([...rev.byPeriod.values()].map((p) => p.unallocatedPoolMicro)));
      const earned = earnings(rev);
      for (const [k, a] of rev.perProvider) expect(earned.get(k)).toBe(a.netMicro);

      // shuffled lines, and each line split in two, price the same
      const shuffled = r.shuffle([...lines]);
      const split = shuffled.flatMap((l) => {
        const part = l.billableCalls === 0n ? 0n : BigInt(r.int(Number(l.billableCalls) + 1));
        return [line(l.period, l.providerId, part), line(l.period, l.providerId, l.billableCalls - part)];
      });
      const again = priceLines({
        lines: r.shuffle(split),
        pricing: new Map(r.shuffle([...pricing])),
        pools: new Map(r.shuffle([...pools])),
        feeBps,
      });
      expect(snapshot(again)).toEqual(snapshot(rev));

      // earnings only grow period by period, so owed() between two cycles never sees an overpayment
      const periods = [...rev.byPeriod.keys()];
      const earlier = earnings(rev, { throughPeriod: periods[r.int(periods.length)] });
      expect(() => owed(earned, earlier)).not.toThrow();
    }
  });
});

describe("earnings and owed", () => {
  const pricing = new Map([
    [A, perCall(10n)],
    [B, freePool(1)],
  ]);
  const lines = [line(202501, A, 1n), line(202502, A, 2n), line(202503, A, 4n), line(202502, B, 1n)];
  const rev = priceLines({ lines, pricing, pools: new Map([[202502, 50n]]), feeBps: 0 });

  it("sums each provider's net over the periods, up to a period if asked", () => {
    expect([...earnings(rev)]).toEqual([
      [A, 70n],
      [B, 50n],
    ]);
    expect([...earnings(rev, { throughPeriod: 202501 })]).toEqual([[A, 10n]]);
    expect([...earnings(rev, { throughPeriod: 202502 })]).toEqual([
      [A, 30n],
      [B, 50n],
    ]);
    expect(() => earnings(rev, { throughPeriod: 2025.5 })).toThrow(InvalidRevenueInputError);
  });

  it("owes the difference to what was already paid, positive amounts only", () => {
    expect([
      ...owed(
        earnings(rev),
        new Map([
          [A, 30n],
          [B, 50n],
        ]),
      ),
    ]).toEqual([[A, 40n]]);
    expect([...owed(earnings(rev), new Map())]).toEqual([
      [A, 70n],
      [B, 50n],
    ]);
    expect(owed(new Map([[A, 0n]]), new Map()).size).toBe(0);
  });

  it("treats an overpayment as an invariant breach, naming every overpaid provider", () => {
    let error: unknown;
    try {
      owed(
        new Map([
          [A, 5n],
          [B, 9n],
        ]),
        new Map([
          [A, 6n],
          [B, 9n],
          [C, 1n],
        ]),
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OverpaidError);
    expect((error as OverpaidError).overpaid).toEqual([
      { providerId: A, earnedMicro: 5n, paidMicro: 6n },
      { providerId: C, earnedMicro: 0n, paidMicro: 1n },
    ]);
    expect((error as OverpaidError).code).toBe("OVERPAID");
  });

  it("refuses malformed amounts", () => {
    expect(() => owed(new Map([[A, -1n]]), new Map())).toThrow(InvalidRevenueInputError);
    expect(() => owed(new Map(), new Map([[A, 1 as unknown as bigint]]))).toThrow(InvalidRevenueInputError);
    expect(() => owed(new Map([["0xA" as ProviderId, 1n]]), new Map())).toThrow(InvalidRevenueInputError);
  });
});
