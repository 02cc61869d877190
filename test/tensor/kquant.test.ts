// K-quant matrices (Q4_K, Q5_K, Q6_K held as GGUF stores them) through `linear` on every backend:
//   - the activation quantiser (Q8_K) is ggml's: hand values (halves to even), and the native one equals
//     the TypeScript one byte for byte;
//   - the native kernels (every ISA, in child processes) equal the TypeScript integer reference
//     (src/backends/js/kquant.ts matmulKQ8) within 1e-5 of Σ|block terms|: the integer part is exact, only
//     the f32 combination of ≤ k/256 block results per output (in 8 lanes, then across them) is rounded in
//     another order than the reference's f64 sum, ~(k/256 + 8)·2⁻²⁴ relative at worst;
//   - and every backend equals the dequantise-and-dot reference within the activations' rounding: each
//     q8 is within d8/2 of x (d8 its block's scale), so |Δ| ≤ Σ_blocks d8/2·Σ|w| (js/wasm compute the
//     reference itself: there the check is against the dequantised f32 weight through `linear`);
//   - shapes: one row (decode) and many (prefill, a row count not a multiple of 4), n not a multiple of
//     the tile; the input gradient through the frozen weight is dY·W on the dequantised weight.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { backendNames, getBackend, setBackend } from "../../src/backends/index.js";
import { nativeQuantizeQ8K } from "../../src/backends/native/index.js";
import { knob } from "../../src/core/knobs.js";
import { f32ToF16Bits } from "../../src/io/half.js";
import {
  backward,
  dequantize,
  fromArray,
  K_BLOCK_BYTES,
  type KQuant,
  linear,
  matmulKQ8,
  mul,
  noGrad,
  QK_K,
  QuantTensor,
  quantizeQ8K,
  scope,
  sum,
} from "../../src/tensor/index.js";
import { closeness, randArray } from "../helpers.js";

const initial = getBackend();
after(() => setBackend(initial));

const TYPES: readonly KQuant[] = ["q4_k", "q5_k", "q6_k"];

/** n rows of k values as `type` super-blocks: random bytes, the f16 scales set to small normal values. */
function randomKQuant(type: KQuant, n: number, k: number, seed: number): QuantTensor {
  const bb = K_BLOCK_BYTES[type];
  const count = (n * k) / QK_K;
  const b = new Uint8Array(count * bb);
  let s = seed >>> 0;
  for (let i = 0; i < b.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    b[i] = s >>> 24;
  }
  const setHalf = (at: number, v: number) => {
    const h = f32ToF16Bits(v);
    b[at] = h & 255;
    b[at + 1] = h >> 8;
  };
  for (let i = 0; i < count; i++) {
    const at = i * bb;
    if (type === "q6_k") setHalf(at + 208, 0.001 * (1 + (i % 5)));
    else {
      setHalf(at, 0.002 * (1 + (i % 3)));
      setHalf(at + 2, 0.001 * (1 + (i % 4)));
    }
  }
  return new QuantTensor(type, [n, k], b);
}

test("Q8_K activations: d = max/−127 of the value of largest |x|, q = nearest(x/d) with halves to even", () => {
  const x = new Float32Array(QK_K);
  x.set([-127, 2.5, 3.5, -2.5, 0.49, 126.5, -0.5]); // max −127 → iscale 1
  x[20] = 1;
  const q = quantizeQ8K(x, 1, QK_K);
  assert.equal(q.d[0], 1);
  assert.deepEqual([...q.qs.subarray(0, 7)], [-127, 2, 4, -2, 0, 126, 0]);
  assert.equal(q.bsums[0], -127 + 2 + 4 - 2 + 126);
  assert.equal(q.bsums[1], 1);
  const zero = quantizeQ8K(new Float32Array(QK_K), 1, QK_K);
  assert.equal(zero.d[0], 0);
  assert.ok(zero.qs.every((v) => v === 0));
});

test("the native Q8_K quantiser equals the TypeScript one byte for byte", {
  skip: !nativeQuantizeQ8K(new Float32Array(QK_K), 1, QK_K) && "no native addon",
}, () => {
  const k = 1024;
  const x = randArray(3 * k, 5, 3);
  for (let i = 0; i < x.length; i += 97) x[i] = Math.fround(x[i]! * 1e-3); // varied magnitudes
  x.fill(0, k, k + QK_K); // an all-zero block
  const want = quantizeQ8K(x, 3, k);
  const got = nativeQuantizeQ8K(x, 3, k)!;
  assert.deepEqual(got.d, want.d);
  assert.deepEqual(got.qs, want.qs);
  assert.deepEqual([...got.bsums], [...want.bsums]);
});

/** C = X·Wᵀ in f64 on the dequantised weight, and the activation-rounding bound of the header. */
function references(
  x: Float32Array,
  w: QuantTensor,
  m: number,
): { exact: Float64Array; bound: Float64Array } {
  const [n, k] = w.shape;
  const wd = noGrad(() => {
    const t = dequantize(w);
    const d = Float32Array.from(t.data);
    t.dispose();
    return d;
  });
  const q = quantizeQ8K(x, m, k);
  const nb = k / QK_K;
  const exact = new Float64Array(m * n);
  const bound = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      let e = 0;
      for (let b = 0; b < nb; b++) {
        let aw = 0;
        for (let p = b * QK_K; p < (b + 1) * QK_K; p++) {
          s += x[i * k + p]! * wd[j * k + p]!;
          aw += Math.abs(wd[j * k + p]!);
        }
        e += (Math.abs(q.d[i * nb + b]!) / 2) * aw;
      }
      exact[i * n + j] = s;
      bound[i * n + j] = e;
    }
  return { exact, bound };
}

const SHAPES = [
  [1, 67, 256],
  [1, 33, 2048],
  [5, 30, 512],
  [9, 17, 768],
  [4, 5, 256],
] as const;

for (const name of backendNames())
  test(`linear on K-quant weights: the kernels' references (${name})`, () => {
    setBackend(name);
    const native = name === "native";
    let seed = 11;
    for (const [m, n, k] of SHAPES)
      for (const type of TYPES) {
        const w = randomKQuant(type, n, k, seed++);
        const x = randArray(m * k, seed++);
        const got = noGrad(() => scope(() => linear(fromArray(x, [m, k]), w).toArray()));
        const { exact, bound } = references(x, w, m);
        const label = `${name} ${type} m=${m} n=${n} k=${k}`;
        if (native) {
          const want = new Float32Array(m * n);
          const mag = new Float32Array(m * n);
          matmulKQ8(x, w.blocks, want, m, n, k, type, mag);
          for (let i = 0; i < m * n; i++) {
            const err = Math.abs(got[i]! - want[i]!);
            assert.ok(
              err <= 1e-5 * mag[i]! + 1e-30,
              `${label} [${i}]: ${got[i]} vs integer reference ${want[i]}`,
            );
            assert.ok(
              Math.abs(got[i]! - exact[i]!) <= bound[i]! * 1.001 + 1e-6,
              `${label} [${i}]: beyond the Q8_K bound`,
            );
          }
        } else {
          // The fallback is the dequantise-and-dot reference; check it against the f64 dot and the
          // dequantised f32 weight through the ordinary matmul.
          const viaF32 = noGrad(() => scope(() => linear(fromArray(x, [m, k]), dequantize(w)).toArray()));
          assert.ok(closeness(got, exact, 1e-5, 1e-5 * Math.sqrt(k)) <= 1, label);
          assert.ok(closeness(viaF32, exact, 1e-5, 1e-5 * Math.sqrt(k)) <= 1, label);
        }
      }
  });

for (const name of backendNames())
  test(`linear through a frozen K-quant weight: x gets dY·W (${name})`, () => {
    setBackend(name);
    const [m, n, k] = [3, 20, 512];
    for (const type of TYPES) {
      const w = randomKQuant(type, n, k, 7);
      const X = randArray(m * k, 2);
      const R = randArray(m * n, 3);
      const gradOf = (weight: Parameters<typeof linear>[1]) =>
        scope(() => {
          const x = fromArray(X, [m, k]);
          x.requiresGrad = true;
          backward(sum(mul(linear(x, weight), fromArray(R, [m, n]))));
          return Float32Array.from(x.grad!.data);
        });
      const wide = dequantize(w);
      assert.ok(closeness(gradOf(w), gradOf(wide), 1e-5, 1e-6) <= 1, `${name} ${type}`);
      wide.dispose();
    }
  });

test("a K-quant QuantTensor needs rows of whole 256-value blocks", () => {
  assert.throws(() => new QuantTensor("q4_k", [2, 128], new Uint8Array(144)), /whole blocks of 256/);
  assert.throws(
    () => new QuantTensor("q6_k", [2, 256], new Uint8Array(419)),
    /419 bytes for q6_k \[2,256\] \(needs 420\)/,
  );
});

// The native addon picks its ISA once at load: the AVX2 and portable kernels run in child processes.
if (backendNames().includes("native") && !knob("HERD_NATIVE_ISA"))
  test("the native AVX2 and portable K-quant kernels equal the references too", () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.NODE_TEST_CONTEXT; // else the child reports to this runner instead of printing TAP
    for (const isa of ["avx2", "generic"]) {
      const r = spawnSync(
        process.execPath,
        [
          "--test",
          "--test-reporter=tap",
          "--test-name-pattern",
          "references \\(native\\)",
          fileURLToPath(import.meta.url),
        ],
        { env: { ...env, HERD_NATIVE_ISA: isa }, encoding: "utf8" },
      );
      assert.equal(r.status, 0, `${isa}: ${r.stdout.slice(-1500)}`);
      assert.match(r.stdout, /# pass 1\n/, isa);
    }
  });
