// `linear` on a bf16 weight, on every backend: the same values as the f32 product with the widened
// weight, over several blocks of rows (the block-wise path) and for one row (decode) and several
// (prefill); and no autograd through it.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { backendNames, getBackend, setBackend } from "../../src/backends/index.js";
import {
  encodeHalf,
  fromArray,
  fromHalfBits,
  linear,
  matmul,
  noGrad,
  scope,
} from "../../src/tensor/index.js";
import { closeness, randArray } from "../helpers.js";

const initial = getBackend();
after(() => setBackend(initial));

for (const name of backendNames()) {
  test(`linear with bf16 weights equals the f32 product (${name})`, () => {
    setBackend(name);
    // k = 3001 puts 21 rows in a decode block (m = 1) and 349 in a prefill block: n = 700 spans several
    // blocks either way, the last one short.
    for (const [m, n, k] of [
      [1, 700, 3001],
      [5, 700, 3001],
      [3, 9, 4],
      [1, 1, 1],
    ] as const) {
      const bits = encodeHalf(randArray(n * k, n + k), "bf16");
      const w = fromHalfBits(bits, [n, k], "bf16");
      const x = randArray(m * k, m * 31 + k);
      const [got, want] = noGrad(() =>
        scope(() => {
          const xt = fromArray(x, [m, k]);
          const wide = w.toF32();
          return [linear(xt, w).toArray(), matmul(xt, wide, { transB: true }).toArray()];
        }),
      );
      const c = closeness(got, want, 1e-5, 1e-5 * Math.sqrt(k));
      assert.ok(c <= 1, `${name} m=${m} n=${n} k=${k}: ${c}× the tolerance`);
      w.dispose();
    }
  });
}
