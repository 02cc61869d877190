// The KV cache for incremental decoding (spec §2.4, §2.7): per layer, the post-RoPE keys and values of
// every token seen so far, [batch, length, kvHeads·headDim] in f32 on the active backend, grown by
// doubling. A forward step writes its new tokens' K and V at positions length..length+T−1 in every
// layer and then advances the length once (`advance`), so all layers agree on it. Every layer's K and V
// are views of one allocation: on the native backend that puts even a short cache on 2 MiB hugepages
// (a 1B model's 545-position cache is 1.1 MB a layer, under the 2 MiB the backend maps itself; decode
// attention over 16 such layers on 4 KiB pages: 0.95 ms, on hugepages 0.88).
import { getBackend } from "../backends/index.js";
import type { LlamaConfig } from "./config.js";

export class KVCache {
  readonly batch: number;
  readonly layers: number;
  /** kvHeads · headDim. */
  readonly kvDim: number;
  /** Tokens cached per batch row. */
  length = 0;
  private capacity: number;
  /** K of every layer, then V of every layer, each [batch, capacity, kvDim]; k and v are its views. */
  private store: Float32Array;
  private k: Float32Array[];
  private v: Float32Array[];
  /** Document id of every cached token [batch, capacity] (only once a step passed document ids). */
  private docs: Int32Array | null = null;
  private disposed = false;

  constructor(config: LlamaConfig, batch = 1, capacity = 256) {
    if (!(Number.isInteger(batch) && batch >= 1)) throw new Error(`KVCache: batch ${batch} must be ≥ 1`);
    this.batch = batch;
    this.layers = config.numHiddenLayers;
    this.kvDim = config.numKeyValueHeads * config.headDim;
    this.capacity = Math.max(1, capacity);
    [this.store, this.k, this.v] = this.allocate(this.capacity);
  }

  /** One buffer for every layer's K and V at `cap` positions, and its per-layer views. */
  private allocate(cap: number): [Float32Array, Float32Array[], Float32Array[]] {
    const per = this.batch * cap * this.kvDim;
    const store = getBackend().alloc(2 * this.layers * per);
    const view = (i: number) => store.subarray(i * per, (i + 1) * per);
    const k = Array.from({ length: this.layers }, (_, l) => view(l));
    const v = Array.from({ length: this.layers }, (_, l) => view(this.layers + l));
    return [store, k, v];
  }

  /** Bytes held (f32 K and V of every layer at the current capacity). */
  get bytes(): number {
    return 2 * this.layers * this.batch * this.capacity * this.kvDim * 4;
  }

  /** Make room for `extra` more tokens per row. */
  reserve(extra: number): void {
    this.live();
    const need = this.length + extra;
    if (need <= this.capacity) return;
    let cap = this.capacity;
    while (cap < need) cap *= 2;
    const [store, k, v] = this.allocate(cap);
    const copy = (from: Float32Array, to: Float32Array) => {
      for (let b = 0; b < this.batch; b++) {
        const src = from.subarray(
          b * this.capacity * this.kvDim,
          (b * this.capacity + this.length) * this.kvDim,
        );
        to.set(src, b * cap * this.kvDim);
      }
    };
    for (let l = 0; l < this.layers; l++) {
      copy(this.k[l]!, k[l]!);
      copy(this.v[l]!, v[l]!);
    }
    getBackend().free(this.store);
    [this.store, this.k, this.v] = [store, k, v];
    if (this.docs) {
      const d = new Int32Array(this.batch * cap);
      for (let b = 0; b < this.batch; b++)
        d.set(this.docs.subarray(b * this.capacity, b * this.capacity + this.length), b * cap);
      this.docs = d;
    }
    this.capacity = cap;
  }

  /** Store layer `layer`'s K and V of T new tokens ([batch, T, kvDim] each) after the cached ones. */
  write(layer: number, k: Float32Array, v: Float32Array, T: number): void {
    this.live();
    if (this.length + T > this.capacity) throw new Error("KVCache.write: call reserve(T) first");
    const row = T * this.kvDim;
    for (let b = 0; b < this.batch; b++) {
      const at = (b * this.capacity + this.length) * this.kvDim;
      this.k[layer]!.set(k.subarray(b * row, (b + 1) * row), at);
      this.v[layer]!.set(v.subarray(b * row, (b + 1) * row), at);
    }
  }

  /** Record the document ids of T new tokens ([batch, T]); earlier tokens without ids are document 0. */
  writeDocs(docIds: Int32Array, T: number): void {
    if (!this.docs) this.docs = new Int32Array(this.batch * this.capacity);
    for (let b = 0; b < this.batch; b++)
      this.docs.set(docIds.subarray(b * T, (b + 1) * T), b * this.capacity + this.length);
  }

  /**
   * K and V of layer `layer` for the cached tokens plus T just written, as [batch, length+T, kvDim]
   * (views when batch is 1, compact copies otherwise; `release` frees copies).
   */
  keysValues(layer: number, T: number): { k: Float32Array; v: Float32Array; copied: boolean } {
    this.live();
    const S = this.length + T;
    const n = S * this.kvDim;
    if (this.batch === 1)
      return { k: this.k[layer]!.subarray(0, n), v: this.v[layer]!.subarray(0, n), copied: false };
    const backend = getBackend();
    const pack = (src: Float32Array) => {
      const out = backend.alloc(this.batch * n);
      for (let b = 0; b < this.batch; b++) {
        const o = b * this.capacity * this.kvDim;
        out.set(src.subarray(o, o + n), b * n);
      }
      return out;
    };
    return { k: pack(this.k[layer]!), v: pack(this.v[layer]!), copied: true };
  }

  /** Document ids of the cached tokens plus T new ones, [batch, length+T] (null if never given). */
  keyDocs(T: number): Int32Array | null {
    if (!this.docs) return null;
    const S = this.length + T;
    const out = new Int32Array(this.batch * S);
    for (let b = 0; b < this.batch; b++)
      out.set(this.docs.subarray(b * this.capacity, b * this.capacity + S), b * S);
    return out;
  }

  /** Whether document ids were ever recorded (then attention masks by document). */
  get hasDocs(): boolean {
    return this.docs !== null;
  }

  /**
   * Every layer's K and V buffers as they are, [batch, capacity, kvDim] (for a backend's fused decode step,
   * which writes the new token's K and V at row `length` itself; call reserve first, advance after).
   */
  buffers(): { k: readonly Float32Array[]; v: readonly Float32Array[]; capacity: number } {
    this.live();
    return { k: this.k, v: this.v, capacity: this.capacity };
  }

  /** After every layer wrote its T tokens. */
  advance(T: number): void {
    this.length += T;
  }

  /** Forget everything (keep the buffers). */
  reset(): void {
    this.length = 0;
    this.docs = null;
  }

  /** Free the buffers. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const backend = getBackend();
    backend.free(this.store);
    this.store = new Float32Array(0);
    this.k = [];
    this.v = [];
  }

  private live(): void {
    if (this.disposed) throw new Error("KVCache: used after dispose()");
  }
}
