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

  /** How many keys the layers hold together. */
  get size(): number {
    return this.keys().size;
  }
}
