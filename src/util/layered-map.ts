/**
 * A map written in layers: a layer reads through to the layers below it and keeps its own writes
 * until `commit` writes them into the layer below. A computation on top of a large map can so be
 * tried without copying the map, and kept or dropped. Values are never `undefined`.
 */
export class LayeredMap<K, V> {
  private readonly own = new Map<K, V>();

  constructor(private readonly below?: LayeredMap<K, V>) {}

  get(key: K): V | undefined {
    const v = this.own.get(key);
    return v !== undefined || !this.below ? v : this.below.get(key);
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  set(key: K, value: V): this {
    this.own.set(key, value);
    return this;
  }

  /** A new layer on top of this one. */
  layer(): LayeredMap<K, V> {
    return new LayeredMap(this);
  }

  /** Writes this layer's entries into the layer below and returns that layer (this one, at the bottom). */
  commit(): LayeredMap<K, V> {
    if (!this.below) return this;
    for (const [k, v] of this.own) this.below.set(k, v);
    this.own.clear();
    return this.below;
  }

  /** Every key of every layer, once. */
  keys(): Set<K> {
    const out = this.below ? this.below.keys() : new Set<K>();
    for (const k of this.own.keys()) out.add(k);
    return out;
  }

  /** Every entry, as the top layer reads it: a plain Map that `from` turns back into a layered map. */
  toMap(): Map<K, V> {
    const out = new Map<K, V>();
    for (const k of this.keys()) out.set(k, this.get(k)!);
    return out;
  }

  /** A one-layer map holding `entries`. */
  static from<K, V>(entries: ReadonlyMap<K, V>): LayeredMap<K, V> {
    const out = new LayeredMap<K, V>();
    for (const [k, v] of entries) out.set(k, v);
    return out;
  }

  /** How many keys the layers hold together. */
  get size(): number {
    return this.keys().size;
  }
}
