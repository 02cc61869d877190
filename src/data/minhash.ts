// MinHash signatures and LSH banding for near-duplicate detection (Broder 1997; the paper's global
// document-level dedup, §3.1.1). Words are hashed once (FNV-1a), shingles of `shingleSize` words are
// combined into one 32-bit value, and each of the k = bands×rows hash functions is a 32-bit
// multiply-add permutation h_i(x) = a_i·x + b_i mod 2^32 (a_i odd) over the well-mixed shingle hash —
// Math.imul and typed arrays only, no BigInt, so the inner loop is a few instructions per hash.
// Candidates are documents sharing all `rows` values of any band; `jaccardEstimate` verifies them.
import { uniformU32 } from "../core/rng.js";
import { fmix32 } from "./hash.js";

export interface MinhashParams {
  /** Words per shingle (default 5). */
  shingleSize: number;
  /** LSH bands (default 14). */
  bands: number;
  /** Signature rows per band (default 8); k = bands × rows hash functions. */
  rows: number;
  /** Seed for the hash functions (default 1). */
  seed: number;
}

export const MINHASH_DEFAULTS: MinhashParams = { shingleSize: 5, bands: 14, rows: 8, seed: 1 };

const EMPTY = 0xffffffff;

/** True for code points that are their own word (CJK ideographs, kana, Hangul syllables, Thai). */
function isSingleCharWord(c: number): boolean {
  return (
    (c >= 0x3040 && c <= 0x30ff) ||
    (c >= 0x3400 && c <= 0x4dbf) ||
    (c >= 0x4e00 && c <= 0x9fff) ||
    (c >= 0xac00 && c <= 0xd7af) ||
    (c >= 0x0e00 && c <= 0x0e7f) ||
    (c >= 0xf900 && c <= 0xfaff)
  );
}

/** Word separators outside ASCII: spaces and general/CJK/full-width punctuation. */
function isNonAsciiSeparator(c: number): boolean {
  return (
    c === 0xa0 ||
    (c >= 0x2000 && c <= 0x206f) ||
    (c >= 0x3000 && c <= 0x303f) ||
    (c >= 0xff00 && c <= 0xff0f) ||
    (c >= 0xff1a && c <= 0xff20) ||
    c === 0xfeff ||
    (c >= 0xa1 && c <= 0xbf && c !== 0xaa && c !== 0xb5 && c !== 0xba)
  );
}

/**
 * Hashes of the words of `text` (lower-cased ASCII letters and digits, any other letters; punctuation
 * separates words; CJK, kana, Hangul and Thai characters are one word each) into `out`, growing it.
 */
export function wordHashes(text: string, out: Uint32Array): { hashes: Uint32Array; count: number } {
  let n = 0;
  let h = 0x811c9dc5;
  let inWord = false;
  const len = text.length;
  for (let i = 0; i < len; i++) {
    let c = text.charCodeAt(i);
    let word: boolean;
    if (c < 128) {
      if (c >= 65 && c <= 90) c += 32;
      word = (c >= 97 && c <= 122) || (c >= 48 && c <= 57);
    } else if (isSingleCharWord(c)) {
      if (inWord) {
        if (n === out.length) out = grow(out);
        out[n++] = h >>> 0;
        inWord = false;
      }
      if (n === out.length) out = grow(out);
      out[n++] = Math.imul(0x811c9dc5 ^ c, 0x01000193) >>> 0;
      continue;
    } else {
      word = !isNonAsciiSeparator(c) && c !== 0x2028 && c !== 0x2029;
    }
    if (word) {
      if (!inWord) {
        h = 0x811c9dc5;
        inWord = true;
      }
      h = Math.imul(h ^ c, 0x01000193);
    } else if (inWord) {
      if (n === out.length) out = grow(out);
      out[n++] = h >>> 0;
      inWord = false;
    }
  }
  if (inWord) {
    if (n === out.length) out = grow(out);
    out[n++] = h >>> 0;
  }
  return { hashes: out, count: n };
}

function grow(a: Uint32Array): Uint32Array {
  const b = new Uint32Array(Math.max(1024, a.length * 2));
  b.set(a);
  return b;
}

/** Computes MinHash signatures with one fixed family of hash functions. */
export class MinHasher {
  readonly k: number;
  private readonly a: Uint32Array;
  private readonly b: Uint32Array;
  private words: Uint32Array = new Uint32Array(4096);
  constructor(readonly params: MinhashParams = MINHASH_DEFAULTS) {
    this.k = params.bands * params.rows;
    const next = uniformU32(params.seed);
    this.a = new Uint32Array(this.k);
    this.b = new Uint32Array(this.k);
    for (let i = 0; i < this.k; i++) {
      this.a[i] = (next() | 1) >>> 0;
      this.b[i] = next();
    }
  }

  /** The signature of `text` (all 0xffffffff for a text without words). */
  signature(text: string, out: Uint32Array = new Uint32Array(this.k)): Uint32Array {
    out.fill(EMPTY);
    const r = wordHashes(text, this.words);
    this.words = r.hashes;
    const w = r.hashes;
    const n = r.count;
    if (n === 0) return out;
    const s = this.params.shingleSize;
    const shingles = n >= s ? n - s + 1 : 1;
    const width = Math.min(s, n);
    const a = this.a;
    const b = this.b;
    const k = this.k;
    for (let i = 0; i < shingles; i++) {
      let x = 0x9747b28c;
      for (let j = 0; j < width; j++) {
        x = Math.imul(x ^ w[i + j]!, 0x9e3779b1);
        x = (x << 13) | (x >>> 19);
      }
      x = fmix32(x);
      for (let t = 0; t < k; t++) {
        const v = (Math.imul(a[t]!, x) + b[t]!) >>> 0;
        if (v < out[t]!) out[t] = v;
      }
    }
    return out;
  }
}

/** Whether a signature came from a text without words (such documents are never clustered). */
export function isEmptySignature(sig: Uint32Array): boolean {
  for (let i = 0; i < sig.length; i++) if (sig[i] !== EMPTY) return false;
  return true;
}

/** Two 32-bit hashes of each band's rows: out[2j], out[2j+1] for band j. */
export function bandHashes(
  sig: Uint32Array,
  bands: number,
  rows: number,
  out = new Uint32Array(bands * 2),
): Uint32Array {
  for (let j = 0; j < bands; j++) {
    let h1 = 0x12345678 ^ j;
    let h2 = 0x9abcdef0 ^ Math.imul(j, 0x27d4eb2f);
    for (let r = 0; r < rows; r++) {
      const v = sig[j * rows + r]!;
      h1 = Math.imul(h1 ^ v, 0x01000193);
      h1 = (h1 << 15) | (h1 >>> 17);
      h2 = Math.imul(h2 + v, 0x85ebca6b) ^ (h2 >>> 13);
    }
    out[2 * j] = fmix32(h1);
    out[2 * j + 1] = fmix32(h2);
  }
  return out;
}

/** Fraction of equal positions: an unbiased estimate of the Jaccard similarity of the shingle sets. */
export function jaccardEstimate(a: Uint32Array, b: Uint32Array): number {
  let eq = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) eq++;
  return eq / a.length;
}

/**
 * Candidate pairs from band records (h1, h2, node) — all for the same band — sorted in place by hash:
 * within each run of equal hashes, a star from the first node plus a chain of neighbours (2m edges for m
 * documents, so a bucket of many exact copies stays linear).
 */
export function bucketPairs(records: Uint32Array, emit: (a: number, b: number) => void): void {
  const n = records.length / 3;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((x, y) => {
    const d1 = records[3 * x]! - records[3 * y]!;
    if (d1 !== 0) return d1;
    const d2 = records[3 * x + 1]! - records[3 * y + 1]!;
    return d2 !== 0 ? d2 : records[3 * x + 2]! - records[3 * y + 2]!;
  });
  let start = 0;
  while (start < n) {
    const s = order[start]!;
    let end = start + 1;
    while (end < n) {
      const e = order[end]!;
      if (records[3 * e] !== records[3 * s] || records[3 * e + 1] !== records[3 * s + 1]) break;
      end++;
    }
    const first = records[3 * s + 2]!;
    for (let i = start + 1; i < end; i++) {
      const node = records[3 * order[i]! + 2]!;
      emit(first, node);
      if (i > start + 1) emit(records[3 * order[i - 1]! + 2]!, node);
    }
    start = end;
  }
}

/** Union-find whose root is always the smallest member (so "keep the root" keeps the first document). */
export class UnionFind {
  readonly parent: Int32Array;
  constructor(n: number) {
    this.parent = new Int32Array(n);
    for (let i = 0; i < n; i++) this.parent[i] = i;
  }
  find(x: number): number {
    const p = this.parent;
    while (p[x] !== x) {
      p[x] = p[p[x]!]!;
      x = p[x]!;
    }
    return x;
  }
  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return;
    if (ra < rb) this.parent[rb] = ra;
    else this.parent[ra] = rb;
  }
}

export interface Clustering {
  /** Root (smallest index) of each document's cluster; itself for singletons. */
  root: Int32Array;
  /** Sizes of clusters with more than one member. */
  sizes: number[];
}

/**
 * In-memory near-duplicate clustering of signatures: LSH candidates, verified by estimated Jaccard
 * ≥ threshold (0 keeps every candidate), joined into connected components.
 */
export function clusterSignatures(sigs: Uint32Array[], params: MinhashParams, threshold: number): Clustering {
  const { bands, rows } = params;
  const uf = new UnionFind(sigs.length);
  const bh = sigs.map((s) => (isEmptySignature(s) ? null : bandHashes(s, bands, rows)));
  for (let j = 0; j < bands; j++) {
    const recs: number[] = [];
    bh.forEach((h, i) => {
      if (h) recs.push(h[2 * j]!, h[2 * j + 1]!, i);
    });
    bucketPairs(Uint32Array.from(recs), (a, b) => {
      if (threshold <= 0 || jaccardEstimate(sigs[a]!, sigs[b]!) >= threshold) uf.union(a, b);
    });
  }
  const root = new Int32Array(sigs.length);
  const count = new Map<number, number>();
  for (let i = 0; i < sigs.length; i++) {
    root[i] = uf.find(i);
    count.set(root[i]!, (count.get(root[i]!) ?? 0) + 1);
  }
  const sizes = [...count.values()].filter((c) => c > 1);
  return { root, sizes };
}
