// Small 32-bit hashes for the hot loops (no BigInt): FNV-1a over UTF-16 code units, murmur3's finaliser
// (src/core/rng.ts's, shared with the seeded generator), and 53-bit keys (two 32-bit hashes in one exact
// JS number) for sets and maps. Seeded random streams come from src/core/rng.ts.
import { fmix32 } from "../core/rng.js";

export { fmix32 };

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

/** A uniform number in [0, 1) fixed by (seed, text): deterministic sampling decisions per document. */
export function unitHash(seed: number, s: string): number {
  return hashString(s, fmix32(seed ^ 0x5bd1e995)) / 4294967296;
}
