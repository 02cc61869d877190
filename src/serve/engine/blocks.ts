// KV memory of the serving engine, accounted in blocks of `blockSize` tokens (spec §7.7: the paper's
// rejection-sampling server admits a request only when the pages for its prompt and its longest answer
// are free), and the prefix cache: full prompt blocks kept after a request's prefill, keyed by a chained
// hash of their token ids (block i's key hashes block i−1's key and its own ids, so a key names the
// whole prefix up to it; the chain starts from the adapter's name, so the same prompt under two LoRA
// adapters, or under one and the base, never shares K/V). A later prompt that starts with cached blocks copies their K/V instead of
// recomputing them. Cached blocks count against the same pool; the least recently used are evicted when
// an admission needs room. Each sequence owns a contiguous cache (a batch-1 KVCache sized to its blocks),
// so the pool is bookkeeping over real allocations rather than one shared page table: what it bounds is
// the memory all sequences and the prefix cache hold together.
import { createHash } from "node:crypto";

/** Chained keys of the full blocks of `ids` (at most `maxBlocks`) computed under `adapter` ("": the base). */
export function blockKeys(
  ids: readonly number[],
  blockSize: number,
  maxBlocks: number,
  adapter = "",
): string[] {
  const keys: string[] = [];
  let parent = adapter === "" ? "" : `lora:${adapter}`;
  for (let b = 0; b < maxBlocks && (b + 1) * blockSize <= ids.length; b++) {
    const h = createHash("sha256");
    h.update(parent);
    h.update(Int32Array.from(ids.slice(b * blockSize, (b + 1) * blockSize)));
    parent = h.digest("hex");
    keys.push(parent);
  }
  return keys;
}

/** One cached block: every layer's K then V for blockSize tokens, [layers, blockSize, kvDim] each. */
export interface CachedBlock {
  k: Float32Array;
  v: Float32Array;
}

export class BlockPool {
  /** Blocks held by running sequences. */
  private held = 0;
  /** The prefix cache, in LRU order (a Map iterates in insertion order; a hit re-inserts). */
  private readonly prefix = new Map<string, CachedBlock>();

  constructor(
    readonly total: number,
    readonly blockSize: number,
    readonly prefixCaching: boolean,
  ) {
    if (!(Number.isInteger(total) && total >= 1)) throw new Error(`BlockPool: ${total} blocks must be ≥ 1`);
  }

  /** Blocks a sequence of `tokens` needs. */
  blocksFor(tokens: number): number {
    return Math.ceil(tokens / this.blockSize);
  }

  get used(): number {
    return this.held + this.prefix.size;
  }

  get cachedBlocks(): number {
    return this.prefix.size;
  }

  /** Take n blocks for a sequence, evicting cached prefix blocks (least recent first) if needed. */
  tryTake(n: number): boolean {
    if (this.held + n > this.total) return false;
    for (const key of this.prefix.keys()) {
      if (this.held + this.prefix.size + n <= this.total) break;
      this.prefix.delete(key);
    }
    this.held += n;
    return true;
  }

  give(n: number): void {
    this.held -= n;
    if (this.held < 0) throw new Error("BlockPool: more blocks given back than taken");
  }

  /** The cached blocks that start `keys`, in order (each hit becomes most recent). */
  lookup(keys: readonly string[]): CachedBlock[] {
    const out: CachedBlock[] = [];
    if (!this.prefixCaching) return out;
    for (const key of keys) {
      const b = this.prefix.get(key);
      if (!b) break;
      this.prefix.delete(key);
      this.prefix.set(key, b);
      out.push(b);
    }
    return out;
  }

  has(key: string): boolean {
    return this.prefix.has(key);
  }

  /** Cache a block if there is a free block for it (never evicts a running sequence's memory). */
  store(key: string, block: CachedBlock): void {
    if (!this.prefixCaching || this.prefix.has(key)) return;
    if (this.held + this.prefix.size + 1 > this.total) {
      const oldest = this.prefix.keys().next();
      if (oldest.done) return;
      this.prefix.delete(oldest.value);
    }
    this.prefix.set(key, block);
  }
}
