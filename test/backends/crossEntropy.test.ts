// Tests for the reference (js backend) fused cross-entropy kernels against a naive f64 log-softmax:
// losses, lse and dlogits with ignored rows and mask weights, stability on huge logits, in-place
// dlogits, a finite-difference check of the gradient, and the error on an out-of-range target.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { crossEntropy, crossEntropyBackward } from "../../src/backends/js/crossEntropy.js";
import { closeness, randArray, rng } from "../helpers.js";

const IGNORE = -100;

/** Naive f64: per-row log-softmax, weighted loss, lse, and dlogits = scale·w·(softmax - onehot). */
function naive(
  logits: ArrayLike<number>,
  targets: Int32Array,
  mask: Float32Array | null,
  rows: number,
  vocab: number,
  scale: number,
): { losses: Float64Array; lse: Float64Array; dlogits: Float64Array } {
  const losses = new Float64Array(rows);
  const lse = new Float64Array(rows);
  const dlogits = new Float64Array(rows * vocab);
  for (let r = 0; r < rows; r++) {
    const row = Array.from({ length: vocab }, (_, j) => logits[r * vocab + j]!);
    const max = Math.max(...row);
    const l = max + Math.log(row.reduce((acc, x) => acc + Math.exp(x - max), 0));
    lse[r] = l;
    const t = targets[r]!;
    const w = t === IGNORE ? 0 : mask ? mask[r]! : 1;
    if (w === 0) continue;
    const logSoftmax = row.map((x) => x - l);
    losses[r] = -w * logSoftmax[t]!;
    for (let j = 0; j < vocab; j++) {
      dlogits[r * vocab + j] = scale * w * (Math.exp(logSoftmax[j]!) - (j === t ? 1 : 0));
    }
  }
  return { losses, lse, dlogits };
}

function assertClose(
  what: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  rtol: number,
  atol: number,
) {
  const c = closeness(got, want, rtol, atol);
  assert.ok(c <= 1, `${what}: closeness ${c} (rtol ${rtol}, atol ${atol})`);
}

interface Problem {
  logits: Float32Array;
  targets: Int32Array;
  mask: Float32Array | null;
  rows: number;
  vocab: number;
}

function problem(rows: number, vocab: number, seed: number, withMask: boolean, logitScale = 4): Problem {
  const r = rng(seed);
  const targets = new Int32Array(rows);
  for (let i = 0; i < rows; i++) targets[i] = Math.floor(r() * vocab);
  targets[1] = IGNORE; // one ignored row
  let mask: Float32Array | null = null;
  if (withMask) {
    mask = new Float32Array(rows);
    for (let i = 0; i < rows; i++) mask[i] = Math.round(r() * 4) / 4; // 0, 0.25, ..., 1
    mask[0] = 0.5;
    mask[2] = 0;
  }
  return { logits: randArray(rows * vocab, seed + 1, logitScale), targets, mask, rows, vocab };
}

function forward(p: Problem): { losses: Float32Array; lse: Float32Array } {
  const losses = new Float32Array(p.rows).fill(Number.NaN);
  const lse = new Float32Array(p.rows).fill(Number.NaN);
  crossEntropy(p.logits, p.targets, p.mask, losses, lse, p.rows, p.vocab, IGNORE);
  return { losses, lse };
}

function backward(p: Problem, lse: Float32Array, scale: number): Float32Array {
  const dlogits = new Float32Array(p.rows * p.vocab).fill(Number.NaN);
  crossEntropyBackward(p.logits, p.targets, p.mask, lse, scale, dlogits, p.rows, p.vocab, IGNORE);
  return dlogits;
}

describe("js crossEntropy", () => {
  for (const withMask of [false, true]) {
    test(`forward and backward vs naive log-softmax (${withMask ? "mask weights" : "no mask"}, ignore index)`, () => {
      const p = problem(9, 37, withMask ? 11 : 12, withMask);
      const scale = 1 / 7;
      const { losses, lse } = forward(p);
      const dlogits = backward(p, lse, scale);
      const want = naive(p.logits, p.targets, p.mask, p.rows, p.vocab, scale);
      assertClose("losses", losses, want.losses, 1e-6, 1e-6);
      assertClose("lse", lse, want.lse, 1e-6, 1e-6);
      assertClose("dlogits", dlogits, want.dlogits, 1e-5, 1e-7);
      // The ignored row has zero loss and zero gradient but a real lse.
      assert.equal(losses[1], 0);
      assert.ok(dlogits.subarray(37, 74).every((x) => x === 0));
      assert.ok(Number.isFinite(lse[1]!) && lse[1]! > 0);
      if (withMask) {
        assert.equal(losses[2], 0); // mask 0
        assert.ok(dlogits.subarray(74, 111).every((x) => x === 0));
      }
    });
  }

  test("gradient vs finite differences of the naive f64 weighted loss", () => {
    const p = problem(3, 6, 21, true, 2);
    const scale = 0.7;
    const { lse } = forward(p);
    const dlogits = backward(p, lse, scale);
    const x = Float64Array.from(p.logits);
    const total = () =>
      scale * naive(x, p.targets, p.mask, p.rows, p.vocab, scale).losses.reduce((a, b) => a + b, 0);
    const eps = 1e-6;
    const fd = new Float64Array(x.length);
    for (let j = 0; j < x.length; j++) {
      const keep = x[j]!;
      x[j] = keep + eps;
      const up = total();
      x[j] = keep - eps;
      const down = total();
      x[j] = keep;
      fd[j] = (up - down) / (2 * eps);
    }
    assertClose("dlogits vs fd", dlogits, fd, 1e-4, 1e-7);
  });

  test("large logits (1e4) stay finite and exact", () => {
    const vocab = 5;
    const logits = Float32Array.from([1e4, 1e4, -1e4, 0, 1e4 - 1, -1e4, -1e4, 1e4, -1e4, -1e4]);
    const p: Problem = { logits, targets: Int32Array.from([0, 3]), mask: null, rows: 2, vocab };
    const { losses, lse } = forward(p);
    const want = naive(p.logits, p.targets, null, 2, vocab, 1);
    // Row 0: two equal maxima and one 1 below: loss = log(2 + e^-1).
    assert.ok(Math.abs(losses[0]! - Math.log(2 + Math.exp(-1))) < 1e-6, `loss0 ${losses[0]}`);
    assertClose("losses", losses, want.losses, 1e-6, 1e-6);
    assertClose("lse", lse, want.lse, 1e-6, 1e-6);
    assert.ok(Math.abs(losses[1]! - 2e4) / 2e4 < 1e-6);
    const dlogits = backward(p, lse, 1);
    assert.ok(dlogits.every(Number.isFinite));
    // The saved lse is f32: near 1e4 its spacing is ~1e-3, so exp(x - lse) carries a relative error of
    // up to |lse|·2^-24 ≈ 6e-4. That is the interface's precision, not the kernel's.
    assertClose("dlogits", dlogits, want.dlogits, 1e-3, 1e-7);
    for (let r = 0; r < 2; r++) {
      const rowSum = dlogits.subarray(r * vocab, (r + 1) * vocab).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(rowSum) < 2e-3, `row ${r} gradient sums to ${rowSum}`);
    }
  });

  test("dlogits may alias logits (in place)", () => {
    const p = problem(6, 50, 31, true);
    const { lse } = forward(p);
    const separate = backward(p, lse, 0.25);
    const inPlace = p.logits; // overwritten below
    crossEntropyBackward(inPlace, p.targets, p.mask, lse, 0.25, inPlace, p.rows, p.vocab, IGNORE);
    assert.deepEqual(Array.from(inPlace), Array.from(separate));
  });

  test("an out-of-range target throws, naming the row and the value", () => {
    for (const bad of [50, -1, 1000]) {
      const p = problem(4, 50, 41, false);
      p.targets[2] = bad;
      const lse = new Float32Array(4);
      const namesRowAndValue = (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.match(e.message, /row 2\b/);
        assert.match(e.message, new RegExp(`target ${bad}\\b`));
        return true;
      };
      assert.throws(() => forward(p), namesRowAndValue);
      assert.throws(() => backward(p, lse, 1), namesRowAndValue);
    }
  });

  test("with a non-default ignore index, -100 is an ordinary (invalid) target", () => {
    const p = problem(3, 8, 51, false);
    const losses = new Float32Array(3);
    const lse = new Float32Array(3);
    assert.throws(() => crossEntropy(p.logits, p.targets, null, losses, lse, 3, 8, 7), /row 1/);
    p.targets[1] = 7; // now ignored
    crossEntropy(p.logits, p.targets, null, losses, lse, 3, 8, 7);
    assert.equal(losses[1], 0);
  });
});
