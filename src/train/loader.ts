// The packed-sequence loader (spec §6, §2.7): token shards (HERDTOKS v1) are cut into windows of
// seqLen+1 tokens; each epoch visits every window once in an order drawn from the seed. A batch gives
// ids, next-token targets and per-token document ids, so attention can stay inside a document (the
// paper's document mask). A target whose next token starts another document is ignored (−100): under
// the document mask nothing in the window predicts it. The position (epoch, cursor) is serialisable and
// restoring it continues on exactly the same sequence of batches.

import { Rng } from "../core/rng.js";
import { TokenShardReader } from "../data/shards.js";

export interface LoaderPosition {
  epoch: number;
  /** Windows already handed out in this epoch. */
  cursor: number;
  /** The window length the cursor counts in (absent in checkpoints from before the ramp). */
  seqLen?: number;
}

export interface Batch {
  /** Token ids [batch·seqLen], row-major. */
  ids: Int32Array;
  /** Next-token targets [batch·seqLen]; −100 where the next token is in another document. */
  targets: Int32Array;
  /** Document id of every token [batch·seqLen], numbered from 0 within each row. */
  docIds: Int32Array;
  batch: number;
  seqLen: number;
}

interface Window {
  shard: number;
  start: number;
}

export class PackedLoader {
  private readonly shards: TokenShardReader[];
  private windows: Window[] = [];
  private order: Uint32Array = new Uint32Array(0);
  private seqLen = 0;
  position: LoaderPosition = { epoch: 0, cursor: 0, seqLen: 0 };

  /**
   * `ends[i]`: windows of shard i stop before this token offset (the held-out documents after it are
   * never read; see heldoutSplit.ts); default the whole shard.
   */
  constructor(
    paths: string[],
    seqLen: number,
    readonly seed: number,
    private readonly ends: (number | undefined)[] = [],
  ) {
    if (paths.length === 0) throw new Error("loader: no token shards given");
    this.shards = paths.map((p) => new TokenShardReader(p));
    this.setSeqLen(seqLen);
  }

  get vocabSize(): number {
    return Math.max(...this.shards.map((s) => s.vocabSize));
  }

  /** Number of windows of the current sequence length (one epoch). */
  get size(): number {
    return this.windows.length;
  }

  /**
   * Change the window length (the batch/sequence-length ramp). The shards are recut into windows of the
   * new length with their own order for this epoch, and the position keeps the share of the epoch
   * already consumed, in tokens: the cursor becomes ⌊cursor · old / new⌋ (a change from 64 to 128
   * after 10 windows continues at window 5 of the new order). Windows of the new order may overlap
   * tokens seen earlier in the epoch (and miss others): the order is a fresh shuffle; the next epoch is
   * a complete pass again. The change is a pure function of the position, so a resume repeats it.
   */
  setSeqLen(seqLen: number): void {
    if (!(Number.isInteger(seqLen) && seqLen >= 1)) throw new Error(`loader: seqLen ${seqLen}`);
    if (seqLen === this.seqLen) return;
    const cursor = this.seqLen > 0 ? Math.floor((this.position.cursor * this.seqLen) / seqLen) : 0;
    this.position = { epoch: this.position.epoch, cursor, seqLen };
    this.seqLen = seqLen;
    this.windows = [];
    this.shards.forEach((s, shard) => {
      const end = Math.min(this.ends[shard] ?? s.numTokens, s.numTokens);
      for (let start = 0; start + seqLen + 1 <= end; start += seqLen) this.windows.push({ shard, start });
    });
    if (this.windows.length === 0)
      throw new Error(`loader: no shard holds ${seqLen + 1} tokens (a window of seqLen ${seqLen})`);
    this.order = this.epochOrder(this.position.epoch);
  }

  private epochOrder(epoch: number): Uint32Array {
    return new Rng((this.seed * 1000003 + epoch * 7919 + this.seqLen) >>> 0).permutation(this.windows.length);
  }

  /**
   * Restore a position saved by `position` (trainer_state.json). A position saved under another window
   * length is taken at that length and then carried to this one as `setSeqLen` would.
   */
  restore(pos: LoaderPosition): void {
    const ok = (v: unknown, min: number) => Number.isInteger(v) && (v as number) >= min;
    if (!(ok(pos.epoch, 0) && ok(pos.cursor, 0) && (pos.seqLen === undefined || ok(pos.seqLen, 1))))
      throw new Error(`loader: bad position ${JSON.stringify(pos)}`);
    const target = this.seqLen;
    if (pos.seqLen !== undefined && pos.seqLen !== target) this.setSeqLen(pos.seqLen);
    this.position = { epoch: pos.epoch, cursor: pos.cursor, seqLen: this.seqLen };
    this.order = this.epochOrder(pos.epoch);
    this.setSeqLen(target);
  }

  /** The next `batch` windows (wrapping into a new epoch with a new order). */
  next(batch: number): Batch {
    const T = this.seqLen;
    const ids = new Int32Array(batch * T);
    const targets = new Int32Array(batch * T);
    const docIds = new Int32Array(batch * T);
    for (let b = 0; b < batch; b++) {
      if (this.position.cursor >= this.order.length) {
        this.position = { epoch: this.position.epoch + 1, cursor: 0, seqLen: T };
        this.order = this.epochOrder(this.position.epoch);
      }
      const w = this.windows[this.order[this.position.cursor++]!]!;
      fillWindow(this.shards[w.shard]!, w.start, T, ids, targets, docIds, b * T);
    }
    return { ids, targets, docIds, batch, seqLen: T };
  }

  close(): void {
    for (const s of this.shards) s.close();
  }
}

/**
 * One training window: the T tokens of `shard` from `start` into ids[off…], each one's document index
 * within the window into docIds, and its next token into targets — or -100 where the next token starts
 * another document (the document mask's rule: nothing is predicted across a boundary).
 */
export function fillWindow(
  shard: TokenShardReader,
  start: number,
  T: number,
  ids: Int32Array,
  targets: Int32Array,
  docIds: Int32Array,
  off: number,
): void {
  const toks = shard.tokens(start, T + 1);
  let doc = shard.documentAt(start);
  let nextStart = shard.docStarts[doc + 1]!;
  let local = 0;
  for (let i = 0; i < T; i++) {
    const pos = start + i;
    while (pos >= nextStart) {
      doc++;
      local++;
      nextStart = shard.docStarts[doc + 1]!;
    }
    ids[off + i] = toks[i]!;
    docIds[off + i] = local;
    targets[off + i] = pos + 1 >= nextStart ? -100 : toks[i + 1]!;
  }
}
