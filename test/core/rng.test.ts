// src/core/rng.ts: the one seeded generator keeps the trainer's stream bit for bit (checkpoints store its
// state, so a resume must continue it), continues from its state, and is uniform enough for its users.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fmix32, Rng, uniform, uniformU32 } from "../../src/core/rng.js";

/** The trainer's splitmix32 as src/train/rng.ts wrote it before core/rng.ts, written out here. */
function trainerStream(seed: number, n: number): number[] {
  let state = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    out.push(((z ^ (z >>> 16)) >>> 0) / 4294967296);
  }
  return out;
}

test("the stream is the trainer's splitmix32, bit for bit", () => {
  for (const seed of [0, 1, 42, 0xffffffff, -7, 2654435761 * 3]) {
    const r = new Rng(seed);
    assert.deepEqual(
      Array.from({ length: 50 }, () => r.next()),
      trainerStream(seed, 50),
    );
  }
  const u = uniform(9);
  const w = uniformU32(9);
  for (const x of trainerStream(9, 10)) {
    assert.equal(u(), x);
    assert.equal(w(), x * 4294967296);
  }
  assert.equal(fmix32(0), 0);
});

test("new Rng(r.state) continues r's stream", () => {
  const r = new Rng(123);
  for (let i = 0; i < 17; i++) r.next();
  const s = new Rng(r.state);
  for (let i = 0; i < 10; i++) assert.equal(s.nextU32(), r.nextU32());
});

test("draws are uniform and permutations are permutations", () => {
  const r = new Rng(5);
  const bins = new Array(10).fill(0);
  for (let i = 0; i < 100000; i++) bins[Math.floor(r.next() * 10)]++;
  for (const b of bins) assert.ok(Math.abs(b - 10000) < 500, `bin ${b}`);
  const p = new Rng(1).permutation(1000);
  assert.deepEqual(
    [...p].sort((a, b) => a - b),
    Array.from({ length: 1000 }, (_, i) => i),
  );
});
