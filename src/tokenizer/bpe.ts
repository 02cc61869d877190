// Byte-level BPE merging (tiktoken's `_byte_pair_merge`): start from single bytes and repeatedly merge
// the adjacent pair whose concatenation has the lowest rank (leftmost on ties) until no adjacent pair
// joins into a token. Every part is always a token, so instead of building the bytes of each candidate
// pair (a string per lookup) we look up (left id, right id) in a pair table. A BPE token's id is its
// rank, so the table's value is both the pair's rank and the merged part's id. Short pieces use tiktoken's linear scan for the
// lowest rank; long ones a heap over (rank, position), which picks the same pair at every step, so the
// results are identical while the cost is O(n log n) instead of O(n²).

/** (left id, right id) → id of the token they join into, or -1. Filled lazily: the first time a pair
 * is asked for, the bytes of the right token are walked down a byte trie of the vocabulary from where
 * the left token ends; the answer (either way) is kept in an open-addressing table over typed arrays.
 * No strings are built, so even the first lookup of a pair is cheap. */
export class PairTable {
  /** id of each single byte */
  readonly byteId = new Int32Array(256);
  /** what two bytes (b0 << 8 | b1) join into: a direct table for the commonest lookups; -2 = not yet known */
  private readonly bytePair = new Int32Array(65536).fill(-2);
  /** trie node where each token ends */
  private readonly endNode: Int32Array;
  /** bytes of each token: tokBytes[tokStart[id] .. tokStart[id + 1]) */
  private readonly tokStart: Int32Array;
  private readonly tokBytes: Uint8Array;
  /** trie: child of (node, byte) in an open-addressing table keyed by node * 256 + byte */
  private readonly edgeKey: Int32Array;
  private readonly edgeChild: Int32Array;
  private readonly edgeMask: number;
  private readonly edgeShift: number;
  /** id of the token ending at each trie node, or -1 */
  private readonly nodeId: Int32Array;
  private keysA = new Int32Array(1 << 16).fill(-1);
  private keysB = new Int32Array(1 << 16);
  private vals = new Int32Array(1 << 16);
  private mask = (1 << 16) - 1;
  private shift = 16;
  private used = 0;

  /** From a rank map (token bytes as binary strings → rank). */
  constructor(ranks: Map<string, number>) {
    let size = 0;
    let total = 0;
    for (const [tok, rank] of ranks) {
      size = Math.max(size, rank + 1);
      total += tok.length;
    }
    this.tokStart = new Int32Array(size + 1);
    for (const [tok, rank] of ranks) this.tokStart[rank + 1] = tok.length;
    for (let k = 0; k < size; k++) this.tokStart[k + 1]! += this.tokStart[k]!;
    this.tokBytes = new Uint8Array(total);
    let cap = 1024;
    while (cap < 2 * (total + 1)) cap *= 2;
    this.edgeKey = new Int32Array(cap).fill(-1);
    this.edgeChild = new Int32Array(cap);
    this.edgeMask = cap - 1;
    this.edgeShift = Math.clz32(cap) + 1;
    this.nodeId = new Int32Array(total + 1).fill(-1);
    this.endNode = new Int32Array(size).fill(-1);
    let nodes = 1; // node 0 is the root
    for (const [tok, rank] of ranks) {
      let node = 0;
      const at = this.tokStart[rank]!;
      for (let i = 0; i < tok.length; i++) {
        const byte = tok.charCodeAt(i);
        this.tokBytes[at + i] = byte;
        const key = node * 256 + byte;
        let h = this.edgeSlot(key);
        while (this.edgeKey[h] !== -1 && this.edgeKey[h] !== key) h = (h + 1) & this.edgeMask;
        if (this.edgeKey[h] === -1) {
          this.edgeKey[h] = key;
          this.edgeChild[h] = nodes++;
        }
        node = this.edgeChild[h]!;
      }
      this.nodeId[node] = rank;
      this.endNode[rank] = node;
    }
    for (let b = 0; b < 256; b++) this.byteId[b] = ranks.get(String.fromCharCode(b)) ?? -1;
  }

  // Multiplicative hashing: the high bits of the product are well mixed, the low ones are not.
  private edgeSlot(key: number): number {
    return Math.imul(key, 0x9e3779b1) >>> this.edgeShift;
  }

  private slot(a: number, b: number): number {
    return Math.imul(Math.imul(a, 0x85ebca77) ^ b, 0x9e3779b1) >>> this.shift;
  }

  /** Id of the token that a·b joins into, or -1. */
  get(a: number, b: number): number {
    const { keysA, keysB, mask } = this;
    let i = this.slot(a, b);
    for (;;) {
      const k = keysA[i]!;
      if (k === -1) break;
      if (k === a && keysB[i] === b) return this.vals[i]!;
      i = (i + 1) & mask;
    }
    const v = this.join(a, b);
    keysA[i] = a;
    keysB[i] = b;
    this.vals[i] = v;
    if (++this.used * 2 > mask) this.grow();
    return v;
  }

  /** Id of the token that bytes b0·b1 join into, or -1. */
  getBytes(b0: number, b1: number): number {
    const k = (b0 << 8) | b1;
    let v = this.bytePair[k]!;
    if (v === -2) v = this.bytePair[k] = this.join(this.byteId[b0]!, this.byteId[b1]!);
    return v;
  }

  /** Id of the token whose bytes are exactly bytes[0..n), or -1 (a walk down the trie). */
  tokenOf(bytes: Uint8Array, n: number): number {
    let node = 0;
    for (let p = 0; p < n; p++) {
      const key = node * 256 + bytes[p]!;
      let h = this.edgeSlot(key);
      for (;;) {
        const k = this.edgeKey[h]!;
        if (k === key) break;
        if (k === -1) return -1;
        h = (h + 1) & this.edgeMask;
      }
      node = this.edgeChild[h]!;
    }
    return this.nodeId[node]!;
  }

  /** Walks b's bytes down the trie from the end of a. */
  private join(a: number, b: number): number {
    let node = this.endNode[a]!;
    const end = this.tokStart[b + 1]!;
    for (let p = this.tokStart[b]!; p < end; p++) {
      const key = node * 256 + this.tokBytes[p]!;
      let h = this.edgeSlot(key);
      for (;;) {
        const k = this.edgeKey[h]!;
        if (k === key) break;
        if (k === -1) return -1;
        h = (h + 1) & this.edgeMask;
      }
      node = this.edgeChild[h]!;
    }
    return this.nodeId[node]!;
  }

  private grow(): void {
    const { keysA, keysB, vals } = this;
    const cap = keysA.length * 2;
    this.keysA = new Int32Array(cap).fill(-1);
    this.keysB = new Int32Array(cap);
    this.vals = new Int32Array(cap);
    this.mask = cap - 1;
    this.shift = Math.clz32(cap) + 1;
    for (let j = 0; j < keysA.length; j++) {
      const a = keysA[j]!;
      if (a === -1) continue;
      let i = this.slot(a, keysB[j]!);
      while (this.keysA[i] !== -1) i = (i + 1) & this.mask;
      this.keysA[i] = a;
      this.keysB[i] = keysB[j]!;
      this.vals[i] = vals[j]!;
    }
  }
}

const NONE = 0x7fffffff;

/** Pieces at least this long (in bytes) use the heap. */
export const HEAP_THRESHOLD = 96;

/** Appends the ids that bytes[0..n) merge into. */
export function bytePairEncode(bytes: Uint8Array, n: number, t: PairTable, out: number[]): void {
  if (n === 1) out.push(t.byteId[bytes[0]!]!);
  else if (n < HEAP_THRESHOLD) mergeLinear(bytes, n, t, out);
  else mergeHeap(bytes, n, t, out);
}

let idBuf = new Int32Array(256);
let rankBuf = new Int32Array(256);

/** tiktoken's algorithm: a linear scan for the lowest-ranked pair, then splice. */
export function mergeLinear(bytes: Uint8Array, n: number, t: PairTable, out: number[]): void {
  if (idBuf.length < n + 1) {
    idBuf = new Int32Array(2 * n);
    rankBuf = new Int32Array(2 * n);
  }
  const id = idBuf; // id[k]: the k-th part
  const rank = rankBuf; // rank[k]: what parts k and k+1 join into, or NONE
  for (let k = 0; k < n; k++) id[k] = t.byteId[bytes[k]!]!;
  for (let k = 0; k < n - 1; k++) {
    const r = t.getBytes(bytes[k]!, bytes[k + 1]!);
    rank[k] = r < 0 ? NONE : r;
  }
  let m = n; // number of parts
  rank[m - 1] = NONE;
  for (;;) {
    let best = NONE;
    let at = -1;
    for (let k = 0; k < m - 1; k++) {
      if (rank[k]! < best) {
        best = rank[k]!;
        at = k;
      }
    }
    if (at < 0) break;
    id[at] = best;
    m--;
    for (let k = at + 1; k < m; k++) {
      id[k] = id[k + 1]!;
      rank[k] = rank[k + 1]!;
    }
    const right = at + 1 < m ? t.get(best, id[at + 1]!) : -1;
    rank[at] = right < 0 ? NONE : right;
    if (at > 0) {
      const left = t.get(id[at - 1]!, best);
      rank[at - 1] = left < 0 ? NONE : left;
    }
  }
  for (let k = 0; k < m; k++) out.push(id[k]!);
}

/** Same result as mergeLinear, with a binary heap of candidate pairs and a linked list of parts. */
export function mergeHeap(bytes: Uint8Array, n: number, t: PairTable, out: number[]): void {
  // Parts are identified by their first byte's position p; id[p] is the part's token id.
  const id = new Int32Array(n);
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  for (let p = 0; p < n; p++) {
    id[p] = t.byteId[bytes[p]!]!;
    next[p] = p + 1;
    prev[p] = p - 1;
  }
  // Heap entries (rank, left part, right part), ordered by rank then position.
  const cap = 3 * n; // n - 1 initial pairs, at most 2 more per merge
  const hr = new Int32Array(cap);
  const hp = new Int32Array(cap);
  const hq = new Int32Array(cap);
  let size = 0;
  const less = (a: number, b: number) => hr[a]! < hr[b]! || (hr[a] === hr[b] && hp[a]! < hp[b]!);
  const swap = (a: number, b: number) => {
    let x = hr[a]!;
    hr[a] = hr[b]!;
    hr[b] = x;
    x = hp[a]!;
    hp[a] = hp[b]!;
    hp[b] = x;
    x = hq[a]!;
    hq[a] = hq[b]!;
    hq[b] = x;
  };
  const consider = (p: number) => {
    const q = next[p]!;
    if (q >= n) return;
    const r = t.get(id[p]!, id[q]!);
    if (r < 0) return;
    let k = size++;
    hr[k] = r;
    hp[k] = p;
    hq[k] = q;
    while (k > 0) {
      const up = (k - 1) >> 1;
      if (!less(k, up)) break;
      swap(k, up);
      k = up;
    }
  };
  const dead = new Uint8Array(n);
  for (let p = 0; p + 1 < n; p++) consider(p);
  while (size > 0) {
    const r = hr[0]!;
    const p = hp[0]!;
    const q = hq[0]!;
    size--;
    swap(0, size);
    for (let k = 0; ; ) {
      const l = 2 * k + 1;
      if (l >= size) break;
      const c = l + 1 < size && less(l + 1, l) ? l + 1 : l;
      if (!less(c, k)) break;
      swap(c, k);
      k = c;
    }
    // stale unless both parts are alive, still adjacent, and still join into r
    if (dead[p] || dead[q] || next[p] !== q || t.get(id[p]!, id[q]!) !== r) continue;
    id[p] = r;
    dead[q] = 1;
    next[p] = next[q]!;
    if (next[p]! < n) prev[next[p]!] = p;
    consider(p);
    if (p > 0) consider(prev[p]!);
  }
  for (let p = 0; p < n; p = next[p]!) out.push(id[p]!);
}
