// BPE trainer: learns a byte-level BPE vocabulary the Llama 3 way (same pre-tokenisation pattern, the
// same tiktoken ranks format, the 256 special tokens after the ranks) so small models can use a small
// vocabulary. Algorithm: count the distinct pieces of the corpus once; then repeatedly merge the most
// frequent adjacent pair, updating pair counts incrementally (only words containing the merged pair are
// touched) with a lazy max-heap of pairs. Deterministic: ids 0–255 are the bytes by value, merged tokens
// get ids 256, 257, … in creation order, and ties in count go to the smaller left id, then the smaller
// right id. Ranks = ids, so encoding merges in training order.

import { pieceEnd } from "./pattern.js";

export interface TrainProgress {
  phase: "count" | "merge";
  /** count: UTF-16 units read so far; merge: merges done */
  done: number;
  /** count: total units (when known, else 0); merge: merges wanted */
  total: number;
}

export interface TrainOptions {
  /** Number of BPE ranks to learn, bytes included (≥ 256). The model vocabulary adds 256 specials. */
  vocabSize: number;
  /** Merge only pairs seen at least this often (default 1). */
  minFrequency?: number;
  onProgress?: (p: TrainProgress) => void;
}

export interface TrainResult {
  /** Token bytes by rank: 0–255 single bytes, then one per merge. */
  tokens: Uint8Array[];
  /** The merges in order, as [left id, right id]; merge k made id 256 + k. */
  merges: [number, number][];
  /** Count of the pair at each merge. */
  mergeCounts: number[];
  distinctPieces: number;
  totalPieces: number;
}

/** Counts the pre-tokenisation pieces of texts added to it. */
export class PieceCounter {
  readonly counts = new Map<string, number>();
  totalPieces = 0;
  unitsRead = 0;

  add(text: string): void {
    const counts = this.counts;
    for (let i = 0; i < text.length; ) {
      const j = pieceEnd(text, i);
      const piece = text.slice(i, j);
      counts.set(piece, (counts.get(piece) ?? 0) + 1);
      this.totalPieces++;
      i = j;
    }
    this.unitsRead += text.length;
  }
}

/** Trains on texts (counting their pieces first). */
export function trainBpe(texts: Iterable<string>, opts: TrainOptions): TrainResult {
  const counter = new PieceCounter();
  for (const t of texts) {
    counter.add(t);
    opts.onProgress?.({ phase: "count", done: counter.unitsRead, total: 0 });
  }
  return trainFromCounts(counter.counts, opts, counter.totalPieces);
}

const utf8 = new TextEncoder();

/** Trains from piece counts (piece text → occurrences). */
export function trainFromCounts(
  counts: Map<string, number>,
  opts: TrainOptions,
  totalPieces = 0,
): TrainResult {
  const V = opts.vocabSize;
  if (!Number.isInteger(V) || V < 256) throw new Error(`train: vocabSize must be an integer ≥ 256, got ${V}`);
  const minFrequency = opts.minFrequency ?? 1;
  // Words: symbols of every distinct piece of ≥ 2 bytes, stored back to back.
  const pieceBytes: Uint8Array[] = [];
  const wordCounts: number[] = [];
  let totalSymbols = 0;
  for (const [piece, c] of counts) {
    const b = utf8.encode(piece);
    if (b.length < 2) continue;
    pieceBytes.push(b);
    wordCounts.push(c);
    totalSymbols += b.length;
  }
  const nWords = pieceBytes.length;
  const sym = new Int32Array(totalSymbols);
  const wStart = new Int32Array(nWords);
  const wLen = new Int32Array(nWords);
  const wCount = Float64Array.from(wordCounts);
  for (let w = 0, at = 0; w < nWords; w++) {
    wStart[w] = at;
    wLen[w] = pieceBytes[w]!.length;
    sym.set(pieceBytes[w]!, at);
    at += pieceBytes[w]!.length;
  }
  const pairs = new PairTable(V);
  for (let w = 0; w < nWords; w++) {
    const s = wStart[w]!;
    for (let i = 0; i + 1 < wLen[w]!; i++) pairs.add(sym[s + i]!, sym[s + i + 1]!, wCount[w]!, w);
  }
  const heap = new PairHeap(pairs);
  for (let p = 0; p < pairs.size; p++) heap.push(p);

  const tokens: Uint8Array[] = [];
  for (let b = 0; b < 256; b++) tokens.push(Uint8Array.of(b));
  const merges: [number, number][] = [];
  const mergeCounts: number[] = [];
  const visited = new Int32Array(nWords).fill(-1);
  const fresh: number[] = [];
  const freshStep: number[] = [];
  const total = V - 256;
  for (let z = 256; z < V; z++) {
    const best = heap.popBest(minFrequency);
    if (best < 0) break;
    const a = pairs.left[best]!;
    const b = pairs.right[best]!;
    merges.push([a, b]);
    mergeCounts.push(pairs.count[best]!);
    const joined = new Uint8Array(tokens[a]!.length + tokens[b]!.length);
    joined.set(tokens[a]!);
    joined.set(tokens[b]!, tokens[a]!.length);
    tokens.push(joined);
    const where = pairs.words[best]!;
    pairs.words[best] = [];
    fresh.length = 0;
    for (const w of where) {
      if (visited[w] === z) continue;
      visited[w] = z;
      mergeWord(w, a, b, z);
    }
    for (const p of fresh) heap.push(p);
    if ((z & 63) === 0 || z === V - 1) opts.onProgress?.({ phase: "merge", done: z - 255, total });
  }
  return { tokens, merges, mergeCounts, distinctPieces: counts.size, totalPieces };

  /** Remembers pair p as created in step z (once), to be pushed on the heap after the step. */
  function noteFresh(p: number, z: number): void {
    if (freshStep[p] === z) return;
    freshStep[p] = z;
    fresh.push(p);
  }

  /** Replaces every (a, b) in word w by z, left to right, keeping pair counts exact. */
  function mergeWord(w: number, a: number, b: number, z: number): void {
    const s = wStart[w]!;
    const n = wLen[w]!;
    const c = wCount[w]!;
    let o = 0;
    let lastMergeEnd = -1;
    let merged = false;
    for (let i = 0; i < n; ) {
      if (i + 1 < n && sym[s + i] === a && sym[s + i + 1] === b) {
        // pairs destroyed: (a,b), (left, a) unless left came from the previous merge, (b, right)
        pairs.add(a, b, -c, -1);
        if (i > 0 && lastMergeEnd !== i) pairs.add(sym[s + i - 1]!, a, -c, -1);
        if (i + 2 < n) pairs.add(b, sym[s + i + 2]!, -c, -1);
        sym[s + o++] = z;
        i += 2;
        lastMergeEnd = i;
        merged = true;
      } else sym[s + o++] = sym[s + i++]!;
    }
    if (!merged) return;
    wLen[w] = o;
    // pairs created: every pair with z on either side, each counted once
    for (let j = 0; j < o; j++) {
      if (sym[s + j] !== z) continue;
      if (j > 0) noteFresh(pairs.add(sym[s + j - 1]!, z, c, w), z);
      if (j + 1 < o && sym[s + j + 1] !== z) noteFresh(pairs.add(z, sym[s + j + 1]!, c, w), z);
    }
  }
}

/** Pair statistics: id per (left, right), its count and the words it occurs in. */
class PairTable {
  private readonly index = new Map<number, number>();
  left: number[] = [];
  right: number[] = [];
  count: number[] = [];
  words: number[][] = [];
  private lastWord: number[] = [];

  constructor(private readonly V: number) {}

  get size(): number {
    return this.left.length;
  }

  /** Adds `delta` to the count of (a, b), records word w (≥ 0) as containing it; returns its id. */
  add(a: number, b: number, delta: number, w: number): number {
    const key = a * this.V + b;
    let p = this.index.get(key);
    if (p === undefined) {
      p = this.left.length;
      this.index.set(key, p);
      this.left.push(a);
      this.right.push(b);
      this.count.push(0);
      this.words.push([]);
      this.lastWord.push(-1);
    }
    this.count[p]! += delta;
    if (w >= 0 && this.lastWord[p] !== w) {
      this.lastWord[p] = w;
      this.words[p]!.push(w);
    }
    return p;
  }
}

/** Max-heap of pair ids by (count desc, left asc, right asc), with lazily refreshed counts. */
class PairHeap {
  private ids: number[] = [];
  private keys: number[] = []; // count when pushed

  constructor(private readonly t: PairTable) {}

  private before(i: number, j: number): boolean {
    const ki = this.keys[i]!;
    const kj = this.keys[j]!;
    if (ki !== kj) return ki > kj;
    const pi = this.ids[i]!;
    const pj = this.ids[j]!;
    const t = this.t;
    if (t.left[pi] !== t.left[pj]) return t.left[pi]! < t.left[pj]!;
    return t.right[pi]! < t.right[pj]!;
  }

  private swap(i: number, j: number): void {
    const { ids, keys } = this;
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
    [keys[i], keys[j]] = [keys[j]!, keys[i]!];
  }

  push(p: number): void {
    const c = this.t.count[p]!;
    if (c <= 0) return;
    let k = this.ids.length;
    this.ids.push(p);
    this.keys.push(c);
    while (k > 0) {
      const up = (k - 1) >> 1;
      if (!this.before(k, up)) break;
      this.swap(k, up);
      k = up;
    }
  }

  private pop(): void {
    const last = this.ids.length - 1;
    this.swap(0, last);
    this.ids.pop();
    this.keys.pop();
    const n = this.ids.length;
    for (let k = 0; ; ) {
      const l = 2 * k + 1;
      if (l >= n) break;
      const c = l + 1 < n && this.before(l + 1, l) ? l + 1 : l;
      if (!this.before(c, k)) break;
      this.swap(c, k);
      k = c;
    }
  }

  /** The best pair whose current count is ≥ min, or -1. Counts only fall between pushes, so an entry
   * whose recorded count is current is the true maximum; stale ones are re-pushed with their count. */
  popBest(min: number): number {
    while (this.ids.length > 0) {
      const p = this.ids[0]!;
      const recorded = this.keys[0]!;
      this.pop();
      const now = this.t.count[p]!;
      if (now === recorded) {
        if (now < min) return -1;
        return p;
      }
      if (now > 0) this.push(p);
    }
    return -1;
  }
}
