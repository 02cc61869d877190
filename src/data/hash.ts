// Small 32-bit hashes for the hot loops (no BigInt): FNV-1a over UTF-16 code units, murmur3's finaliser,
// a seeded splitmix32 stream, and 53-bit keys (two 32-bit hashes in one exact JS number) for sets and maps.

/** murmur3 fmix32: a bijective avalanche of a 32-bit value. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a over a string's UTF-16 code units, finished with fmix32. */
export function hashString(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return fmix32(h);
}

/** A 53-bit key (exact as a JS number) from two independent hashes of `s`. */
export function key53(s: string): number {
  const a = hashString(s, 0x1b873593);
  const b = hashString(s, 0x7f4a7c15);
  return a * 2097152 + (b & 0x1fffff);
}

/** A deterministic stream of 32-bit values (splitmix32). */
export function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return (z ^ (z >>> 15)) >>> 0;
  };
}

/** A uniform number in [0, 1) fixed by (seed, text): deterministic sampling decisions per document. */
export function unitHash(seed: number, s: string): number {
  return hashString(s, fmix32(seed ^ 0x5bd1e995)) / 4294967296;
}
