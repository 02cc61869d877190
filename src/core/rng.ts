// herd's one seeded random generator: splitmix32, a Weyl sequence (state += 0x9e3779b9, the golden
// ratio's 32 bits) finished by murmur3's fmix32 avalanche. Its whole state is one 32-bit integer, so a
// stream can be written into trainer_state.json and resumed exactly (the data order after a resume is
// the order of an unbroken run); every seed, 0 included, gives a full-period stream of 2^32 values.
// Everything seeded in herd draws from it: the training data order and stage seeds, initial weights,
// sampling, MinHash's hash family, the quality classifier, the benchmarks' and tests' inputs. (Temporary
// file names use Math.random: they need to be unique, not reproducible.) The stream is the one the
// trainer has always used, so checkpoints written before this module resume as they did.
// Bottom layer (src/core/): imports nothing from herd.

/** murmur3 fmix32: a bijective avalanche of a 32-bit value (also the 32-bit hashes' finaliser). */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The generator. `state` is all of it: `new Rng(r.state)` continues r's stream. */
export class Rng {
  state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The next value, a uniform 32-bit unsigned integer. */
  nextU32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    return fmix32(this.state);
  }

  /** Uniform in [0, 1) (a multiple of 2^-32). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Fisher–Yates shuffle of 0..n−1. */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      const t = p[i]!;
      p[i] = p[j]!;
      p[j] = t;
    }
    return p;
  }
}

/** A stream of uniform numbers in [0, 1) from `seed`: Rng's next() as a function. */
export function uniform(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

/** A stream of uniform 32-bit unsigned integers from `seed`: Rng's nextU32() as a function. */
export function uniformU32(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.nextU32();
}
