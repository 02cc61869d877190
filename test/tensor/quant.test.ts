// Q8_0 / Q4_0 weight quantisation: block bytes checked by hand against ggml's reference rules, the
// dequantisation error bound, and `linear` on a quantised weight on every backend (the native kernels
// against the js reference, for one row and several, a k that is not a multiple of 32, a row count
// that is not a multiple of 4).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { backendNames, getBackend, setBackend } from "../../src/backends/index.js";
import { matmulQuant } from "../../src/backends/js/quant.js";
import { knob } from "../../src/core/knobs.js";
import {
  dequantize,
  fromArray,
  linear,
  noGrad,
  QuantTensor,
  quantize,
  quantRowBytes,
  scope,
} from "../../src/tensor/index.js";
import { closeness, randArray } from "../helpers.js";

const initial = getBackend();
after(() => setBackend(initial));

function block(values: number[]): Float32Array {
  const x = new Float32Array(32);
  x.set(values);
  return x;
}

test("Q8_0: d = amax/127 as f16, q = round(x/d) with halves away from zero", () => {
  // amax 127 → d = 1 (f16 0x3C00); 1.5 → 2, −1.5 → −2, 2.5 → 3, −0.4 → 0, 126.6 → 127.
  const x = block([1.5, -1.5, 2.5, -0.4, 126.6, -127]);
  const q = quantize(fromArray(x, [1, 32]), "q8_0");
  const b = q.blocks;
  assert.equal(b.length, 34);
  assert.deepEqual([...b.subarray(0, 2)], [0x00, 0x3c]);
  const qs = [...new Int8Array(b.buffer, b.byteOffset + 2, 32)];
  assert.deepEqual(qs.slice(0, 7), [2, -2, 3, 0, 127, -127, 0]);
  assert.deepEqual([...dequantize(q).toArray()].slice(0, 6), [2, -2, 3, 0, 127, -127]);
  // amax 0.5 → d = 0.5/127 = 0.003937…, stored as f16 0x1C08 (0.0039368…); 0.25 → round(63.5) = 64.
  const y = quantize(fromArray(block([0.5, 0.25, -0.5]), [1, 32]), "q8_0").blocks;
  assert.deepEqual([...y.subarray(0, 5)], [0x08, 0x1c, 127, 64, 0x81]);
});

test("Q4_0: d = max/−8 (signed value of largest magnitude), q = min(15, trunc(x/d + 8.5)), GGUF nibble order", () => {
  // max = −8 → d = 1: −8 → 0, 7 → 15, 0.5 → 9, −0.5 → 8, 7.4 → 15; value j ≥ 16 goes to the high nibble of byte j−16.
  const x = block([-8, 7, 0.5, -0.5, 7.4]);
  x[16] = 3; // q = 11
  x[17] = -3.6; // trunc(4.9) = 4
  const q = quantize(fromArray(x, [1, 32]), "q4_0");
  const b = q.blocks;
  assert.equal(b.length, 18);
  assert.deepEqual([...b.subarray(0, 2)], [0x00, 0x3c]);
  assert.deepEqual(
    [...b.subarray(2, 8)],
    [0xb0 | 0x00, 0x40 | 0x0f, 0x80 | 0x09, 0x80 | 0x08, 0x80 | 0x0f, 0x88],
  );
  const back = dequantize(q).toArray();
  assert.deepEqual([...back.subarray(0, 5)], [-8, 7, 1, 0, 7]);
  assert.deepEqual([...back.subarray(16, 18)], [3, -4]);
  // max = +8 (first of ±8) → d = −1 (f16 0xBC00): 8 → 0, −8 → 16 clipped to 15 (dequantised −7).
  const z = quantize(fromArray(block([8, -8]), [1, 32]), "q4_0");
  assert.deepEqual([...z.blocks.subarray(0, 4)], [0x00, 0xbc, 0x80, 0x8f]);
  assert.deepEqual([...dequantize(z).toArray().subarray(0, 3)], [8, -7, -0]);
});

test("dequantize(quantize(w)) is within half a step (Q8_0) / one step (Q4_0) of w, zero padding for k % 32 ≠ 0", () => {
  const n = 7;
  const k = 100; // 4 blocks, the last holding 4 values
  const w = randArray(n * k, 5, 0.1);
  for (let i = 0; i < k; i += 9) w[i] = w[i]! * 40; // outliers make blocks with very different scales
  for (const format of ["q8_0", "q4_0"] as const) {
    const q = quantize(fromArray(w, [n, k]), format);
    assert.equal(q.blocks.length, n * quantRowBytes(format, k));
    assert.equal(quantRowBytes(format, k), 4 * (format === "q8_0" ? 34 : 18));
    const back = dequantize(q).toArray();
    for (let j = 0; j < n; j++)
      for (let b = 0; b < k; b += 32) {
        let amax = 0;
        for (let t = b; t < Math.min(k, b + 32); t++) amax = Math.max(amax, Math.abs(w[j * k + t]!));
        const step = format === "q8_0" ? amax / 127 : amax / 8;
        const bound = format === "q8_0" ? 0.5 * step * 1.13 : step * 1.01; // f16 rounding of d: ≤ 2^-11·|q|·d
        for (let t = b; t < Math.min(k, b + 32); t++) {
          const e = Math.abs(back[j * k + t]! - w[j * k + t]!);
          assert.ok(e <= bound, `${format} row ${j} col ${t}: error ${e} > ${bound}`);
        }
      }
  }
});

for (const name of backendNames()) {
  test(`linear with quantised weights equals the js reference kernel (${name})`, () => {
    setBackend(name);
    for (const [m, n, k] of [
      [1, 67, 256],
      [1, 64, 2048],
      [5, 30, 100],
      [3, 9, 32],
      [2, 1, 7],
    ] as const) {
      for (const format of ["q8_0", "q4_0"] as const) {
        const w = quantize(fromArray(randArray(n * k, n * k + 1, 0.5), [n, k]), format);
        const x = randArray(m * k, m * 31 + k);
        const want = new Float32Array(m * n);
        matmulQuant(x, w.blocks, want, m, n, k, format);
        const [got, viaF32] = noGrad(() =>
          scope(() => {
            const xt = fromArray(x, [m, k]);
            return [linear(xt, w).toArray(), linear(xt, dequantize(w)).toArray()];
          }),
        );
        const c = closeness(got, want, 1e-5, 1e-5 * Math.sqrt(k));
        assert.ok(c <= 1, `${name} ${format} m=${m} n=${n} k=${k}: ${c}× the tolerance`);
        // The dequantised f32 weight through the ordinary matmul gives the same numbers: on a backend
        // without its own matmulQuant (js, wasm) `got` is the reference kernel itself, so this
        // independent path is what the test checks there.
        assert.ok(closeness(viaF32, want, 1e-5, 1e-5 * Math.sqrt(k)) <= 1);
      }
    }
  });
}

// The native addon picks its ISA once at load: the AVX2 and portable kernels run in child processes.
if (backendNames().includes("native") && !knob("HERD_NATIVE_ISA"))
  test("the native AVX2 and portable quantised kernels equal the js reference too", () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.NODE_TEST_CONTEXT; // else the child reports to this runner instead of printing TAP
    for (const isa of ["avx2", "generic"]) {
      const r = spawnSync(
        process.execPath,
        [
          "--test",
          "--test-reporter=tap",
          "--test-name-pattern",
          "reference kernel \\(native\\)",
          fileURLToPath(import.meta.url),
        ],
        { env: { ...env, HERD_NATIVE_ISA: isa }, encoding: "utf8" },
      );
      assert.equal(r.status, 0, `${isa}: ${r.stdout.slice(-1500)}`);
      assert.match(r.stdout, /# pass 1\n/, isa);
    }
  });

test("QuantTensor checks its byte count", () => {
  assert.throws(
    () => new QuantTensor("q8_0", [2, 32], new Uint8Array(67)),
    /67 bytes for q8_0 \[2,32\] \(needs 68\)/,
  );
});
