// The KV cache for incremental decoding (spec §2.4, §2.7), and the two ops on it: `cacheWrite` (a
// step's keys and values after the cached ones) and `cachedAttention` (queries over the cached keys and
// their own). Per layer, the keys and values of every token seen so far, [batch, length, kvDim] in f32 on
// the backend active when it was made, grown by doubling; it knows no model, only layers × kvDim. A
// forward step writes its new tokens' K and V at positions length..length+T−1 in every layer and then
// advances the length once (`advance`), so all layers agree on it. Every layer's K and V are views of
// one allocation: on the native backend that puts even a short cache on 2 MiB hugepages.
// Both ops go through kernelCall with the cache length as graph parameter CACHE_LENGTH, so a captured
// decode step (graph.ts) replays at any length; the graph must be recaptured when `version` changes (the
// buffers were reallocated).
import type { Backend } from "../backends/backend.js";
import { getBackend } from "../backends/index.js";
import { isCapturing, kernelCall } from "./graph.js";
import { shapeStr, type Tensor, zeros } from "./tensor.js";

/** The graph parameter cacheWrite and cachedAttention pass the cache length as. */
export const CACHE_LENGTH = 0;

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
  /** Bumped when the buffers are reallocated (a graph that recorded them is stale). */
  version = 0;
  private readonly backend: Backend;

  constructor(layers: number, kvDim: number, batch = 1, capacity = 256) {
    if (!(Number.isInteger(batch) && batch >= 1)) throw new Error(`KVCache: batch ${batch} must be ≥ 1`);
    this.batch = batch;
    this.layers = layers;
    this.kvDim = kvDim;
    this.backend = getBackend();
    this.capacity = Math.max(1, capacity);
    [this.store, this.k, this.v] = this.allocate(this.capacity);
  }

  /** One buffer for every layer's K and V at `cap` positions, and its per-layer views. */
  private allocate(cap: number): [Float32Array, Float32Array[], Float32Array[]] {
    const per = this.batch * cap * this.kvDim;
    const store = this.backend.alloc(2 * this.layers * per);
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
    this.backend.free(this.store);
    [this.store, this.k, this.v] = [store, k, v];
    this.version++;
    if (this.docs) {
      const d = new Int32Array(this.batch * cap);
      for (let b = 0; b < this.batch; b++)
        d.set(this.docs.subarray(b * this.capacity, b * this.capacity + this.length), b * cap);
      this.docs = d;
    }
    this.capacity = cap;
  }

  /** Record the document ids of T new tokens ([batch, T]); earlier tokens without ids are document 0. */
  writeDocs(docIds: Int32Array, T: number): void {
    if (!this.docs) this.docs = new Int32Array(this.batch * this.capacity);
    for (let b = 0; b < this.batch; b++)
      this.docs.set(docIds.subarray(b * T, (b + 1) * T), b * this.capacity + this.length);
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

  /** Layer `layer`'s K and V buffers as they are, [batch, capacity, kvDim] (for the ops below). */
  layerBuffers(layer: number): { k: Float32Array; v: Float32Array; capacity: number } {
    this.live();
    const k = this.k[layer];
    if (!k) throw new Error(`KVCache: layer ${layer} of ${this.layers}`);
    return { k, v: this.v[layer]!, capacity: this.capacity };
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

  /** Rewind to the first `length` tokens (keep the buffers): a shared prefix scored against several endings. */
  truncate(length: number): void {
    if (!(Number.isInteger(length) && length >= 0 && length <= this.length))
      throw new Error(`KVCache.truncate: ${length} is not in 0..${this.length}`);
    this.live();
    this.length = length;
  }

  /** Free the buffers. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.backend.free(this.store);
    this.store = new Float32Array(0);
    this.k = [];
    this.v = [];
  }

  /**
   * A new cache of batch rows.length whose row j is a copy of this cache's row rows[j] (K, V and
   * document ids), at least `capacity` positions long. Rows may repeat: `selectRows([0, 0, 0])` shares
   * one prefilled prompt with three sequences (rejection sampling), a subset compacts a batch whose other
   * rows finished. This cache is left as it was.
   */
  selectRows(rows: readonly number[], capacity = this.capacity): KVCache {
    this.live();
    if (rows.length === 0) throw new Error("KVCache.selectRows: no rows");
    for (const r of rows)
      if (!(Number.isInteger(r) && r >= 0 && r < this.batch))
        throw new Error(`KVCache.selectRows: row ${r} of a cache of batch ${this.batch}`);
    const out = new KVCache(this.layers, this.kvDim, rows.length, Math.max(capacity, this.length));
    const n = this.length * this.kvDim;
    for (let l = 0; l < this.layers; l++)
      for (const [j, r] of rows.entries()) {
        out.k[l]!.set(
          this.k[l]!.subarray(r * this.capacity * this.kvDim, r * this.capacity * this.kvDim + n),
          j * out.capacity * this.kvDim,
        );
        out.v[l]!.set(
          this.v[l]!.subarray(r * this.capacity * this.kvDim, r * this.capacity * this.kvDim + n),
          j * out.capacity * this.kvDim,
        );
      }
    if (this.docs) {
      out.docs = new Int32Array(rows.length * out.capacity);
      for (const [j, r] of rows.entries())
        out.docs.set(
          this.docs.subarray(r * this.capacity, r * this.capacity + this.length),
          j * out.capacity,
        );
    }
    out.length = this.length;
    return out;
  }

  private live(): void {
    if (this.disposed) throw new Error("KVCache: used after dispose()");
  }
}

/**
 * Store layer `layer`'s keys and values of T new tokens ([batch, T, kvDim] each) after the cached ones
 * (call cache.reserve(T) first, cache.advance(T) once every layer wrote).
 */
export function cacheWrite(cache: KVCache, layer: number, k: Tensor, v: Tensor, T: number): void {
  const kvd = cache.kvDim;
  if (k.size !== cache.batch * T * kvd || v.size !== k.size)
    throw new Error(
      `cacheWrite: keys ${shapeStr(k.shape)} and values ${shapeStr(v.shape)} are not [${cache.batch}, ${T}, ${kvd}]`,
    );
  const buf = cache.layerBuffers(layer);
  if (cache.length + T > buf.capacity) throw new Error("cacheWrite: call cache.reserve(T) first");
  const row = T * kvd;
  for (let b = 0; b < cache.batch; b++) {
    const base = b * buf.capacity * kvd;
    const at = { arg: 3, param: CACHE_LENGTH, mul: kvd, add: base };
    kernelCall("copy", [k.data, b * row, buf.k, base + cache.length * kvd, row], [at]);
    kernelCall("copy", [v.data, b * row, buf.v, base + cache.length * kvd, row], [at]);
  }
}

export interface CachedAttentionOptions {
  /** Document ids of the T queries [batch·T] when the cache holds document ids. */
  docIds?: Int32Array;
}

/**
 * Attention of T new queries q [batch, T, heads, headDim] over layer `layer`'s cached keys and values
 * plus their own (written by cacheWrite, before advance): causal, with offset length; by document when
 * the cache holds document ids. Inference only (no autograd).
 */
export function cachedAttention(
  cache: KVCache,
  layer: number,
  q: Tensor,
  opts: CachedAttentionOptions = {},
): Tensor {
  const [B, T, H, hd] = q.shape as [number, number, number, number];
  if (q.rank !== 4 || B !== cache.batch || cache.kvDim % hd !== 0)
    throw new Error(
      `cachedAttention: queries ${shapeStr(q.shape)} do not fit a cache of batch ${cache.batch}`,
    );
  const kvHeads = cache.kvDim / hd;
  const S = cache.length + T;
  const kDocIds = cache.keyDocs(T);
  if (isCapturing() && (B !== 1 || kDocIds))
    throw new Error("cachedAttention: only batch 1 without document ids can be captured into a graph");
  const backend = getBackend();
  const buf = cache.layerBuffers(layer);
  // Batch 1: the buffers as they are (the kernel reads the first S rows); else compact copies.
  const pack = (src: Float32Array) => {
    const n = S * cache.kvDim;
    const out = backend.alloc(B * n);
    for (let b = 0; b < B; b++) backend.copy(src, b * buf.capacity * cache.kvDim, out, b * n, n);
    return out;
  };
  const k = B === 1 ? buf.k : pack(buf.k);
  const v = B === 1 ? buf.v : pack(buf.v);
  const out = zeros(q.shape);
  const lse = backend.alloc(B * H * T);
  const qDocIds = kDocIds ? (opts.docIds ?? lastDocs(kDocIds, B, S, T)) : null;
  try {
    const args = {
      batch: B,
      seqQ: T,
      seqK: S,
      heads: H,
      kvHeads,
      headDim: hd,
      scale: 1 / Math.sqrt(hd),
      causal: true,
      qDocIds,
      kDocIds,
    };
    kernelCall(
      "attention",
      [q.data, k, v, out.data, lse, args],
      [{ arg: 5, field: "seqK", param: CACHE_LENGTH, add: T }],
    );
  } finally {
    backend.free(lse);
    if (B !== 1) {
      backend.free(k);
      backend.free(v);
    }
  }
  return out;
}

/** The document ids of the last T of S keys per row (the queries' own). */
function lastDocs(kDocIds: Int32Array, B: number, S: number, T: number): Int32Array {
  const out = new Int32Array(B * T);
  for (let b = 0; b < B; b++) out.set(kDocIds.subarray(b * S + S - T, b * S + S), b * T);
  return out;
}
