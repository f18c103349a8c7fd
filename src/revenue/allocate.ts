import { InvalidRevenueInputError, UnallocatablePoolError } from "./errors.js";
import { isProviderId, type ProviderId } from "./types.js";

/**
 * Splits `pool` micro-USDC in proportion to `weights` by largest remainder (Hamilton):
 * everyone gets floor(pool × w / W); the micro-units left over (fewer than the number of
 * providers) go one each to the largest remainders pool × w mod W, ties to the smaller provider
 * id. The shares add up to `pool` exactly, each is within 1 micro-USDC of the exact share (the
 * floor or the floor + 1), a zero weight gets 0, an exact share gets exactly itself, and the
 * result depends only on the weights, not on the order of the map.
 *
 * Every key of `weights` is in the result, by id ascending. A pool of 0 gives everyone 0; a
 * positive pool with no positive weight throws `UnallocatablePoolError`.
 */
export function allocatePool(pool: bigint, weights: ReadonlyMap<ProviderId, bigint>): Map<ProviderId, bigint> {
  if (typeof pool !== "bigint" || pool < 0n) throw new InvalidRevenueInputError("pool", "must be a non-negative bigint");
  const ids = [...weights.keys()];
  for (const id of ids) {
    if (!isProviderId(id)) throw new InvalidRevenueInputError("weights", `key ${String(id)} is not a canonical provider id`);
  }
  ids.sort();
  const w = ids.map((id) => {
    const v = weights.get(id);
    if (typeof v !== "bigint" || v < 0n) throw new InvalidRevenueInputError("weights", `${id} must be a non-negative bigint`);
    return v;
  });
  const shares = allocateSorted(pool, w);
  const out = new Map<ProviderId, bigint>();
  for (let i = 0; i < ids.length; i++) out.set(ids[i], shares[i]);
  return out;
}

/**
 * The allocation of `allocatePool` over weights already validated and ordered by provider id
 * ascending (index order is the tie-break).
 */
export function allocateSorted(pool: bigint, weights: readonly bigint[]): bigint[] {
  const n = weights.length;
  const shares = new Array<bigint>(n).fill(0n);
  if (pool === 0n) return shares;
  let total = 0n;
  for (const v of weights) total += v;
  if (total === 0n) throw new UnallocatablePoolError(pool);

  const remainders = new Array<bigint>(n);
  const remaining: number[] = [];
  let left = pool;
  for (let i = 0; i < n; i++) {
    const scaled = pool * weights[i];
    const share = scaled / total;
    shares[i] = share;
    left -= share;
    const r = scaled - share * total;
    remainders[i] = r;
    if (r !== 0n) remaining.push(i);
  }
  if (left === 0n) return shares;
  // 0 < left < the number of positive remainders, so only providers with a remainder get one more.
  remaining.sort((a, b) => {
    const ra = remainders[a];
    const rb = remainders[b];
    return ra > rb ? -1 : ra < rb ? 1 : a - b;
  });
  for (let k = 0; left > 0n; k++, left--) shares[remaining[k]] += 1n;
  return shares;
}
