// Quantised-kernel benchmark (`npm run bench -- kquant`): one layer's matrices of the Llama 3.2 1B shape
// (q/o 2048×2048, k/v 512×2048, gate/up 8192×2048, down 2048×8192) through the native backend's `linear`
// kernels, decode (GEMV, one row) and prefill (GEMM, HERD_BENCH_PROMPT rows, 32 by default), for f32,
// bf16 (what a K-quant GGUF matrix became before the K-quant kernels: dequantised at load to f32, or bf16
// with dtype "keep"), Q8_0, Q4_0, Q4_K, Q5_K and Q6_K. Per type: GFLOP/s (2·m·n·k over the best time),
// the weights' effective read rate (bytes of W over the time), and for decode that rate against the
// best streaming read bandwidth measured before and after (the roofline), and the matrices-only decode
// rate of a 16-layer model it implies. Each timed call reads a different copy of the matrix (96 MB of
// copies in all), so the weights come from memory, not the caches. Weights are random blocks with sane scales (the kernels' speed
// does not depend on the values). HERD_BENCH_THREADS threads (2 by default).
// Then Q8_0 and Q4_0 once more, the int8-activation path (native/q8dot.cc, the default on AVX2) against
// the f32-dequantise path (HERD_NATIVE_INT8_DOT=0) in the same run, at one row and eight, timed in turn
// (three rounds each, best kept) so a busy machine slows both alike. HERD_BENCH_KQUANT=int8 runs that alone.
import { setBackend } from "../src/backends/index.js";
import {
  createNativeBackend,
  nativeAvailable,
  nativeInt8Dot,
  nativeMemoryBandwidth,
} from "../src/backends/native/index.js";
import { knob } from "../src/core/knobs.js";
import { f32ToF16Bits } from "../src/io/half.js";
import {
  fromArray,
  fromHalfBits,
  linear,
  noGrad,
  QUANT_BLOCK_BYTES,
  type QuantFormat,
  QuantTensor,
  quantRowBytes,
  scope,
  type Tensor,
} from "../src/tensor/index.js";
import { env, row, time } from "./timing.js";

const SHAPES: readonly [string, number, number][] = [
  ["q_proj/o_proj", 2048, 2048],
  ["k_proj/v_proj", 512, 2048],
  ["gate/up_proj", 8192, 2048],
  ["down_proj", 2048, 8192],
];
/** How many of each a layer has (q, o; k, v; gate, up; down). */
const PER_LAYER = [2, 2, 2, 1];
const LAYERS = 16;
const GB = 1e9;

/** Random `format` blocks [n, k] with every block's f16 scale(s) a small normal number. */
function randomQuant(format: QuantFormat, n: number, k: number, seed: number): QuantTensor {
  const q = QuantTensor.allocate(format, [n, k]);
  const b = q.blocks;
  let s = seed >>> 0;
  for (let i = 0; i < b.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    b[i] = s >>> 24;
  }
  const bb = QUANT_BLOCK_BYTES[format];
  const h = f32ToF16Bits(0.001);
  const at = format === "q6_k" ? [208] : format === "q4_k" || format === "q5_k" ? [0, 2] : [0];
  for (let o = 0; o < b.length; o += bb)
    for (const a of at) {
      b[o + a] = h & 255;
      b[o + a + 1] = h >> 8;
    }
  return q;
}

function weight(
  type: string,
  n: number,
  k: number,
  seed: number,
): { w: Tensor | QuantTensor; bytes: number } {
  if (type === "f32") {
    const v = new Float32Array(n * k);
    for (let i = 0; i < v.length; i++) v[i] = ((i * 2654435761) % 1000) / 1e5 - 0.005;
    return { w: fromArray(v, [n, k]), bytes: 4 * n * k };
  }
  if (type === "bf16") {
    const bits = new Uint16Array(n * k);
    for (let i = 0; i < bits.length; i++) bits[i] = 0x3c00 + ((i * 2654435761) % 255) - 127;
    return { w: fromHalfBits(bits, [n, k], "bf16"), bytes: 2 * n * k };
  }
  const f = type as QuantFormat;
  return { w: randomQuant(f, n, k, seed), bytes: n * quantRowBytes(f, k) };
}

export async function run(): Promise<void> {
  if (!nativeAvailable()) {
    console.log("kquant: the native backend is not built here; nothing to measure");
    return;
  }
  const threads = env("HERD_BENCH_THREADS", 2);
  const prompt = env("HERD_BENCH_PROMPT", 32);
  const backend = createNativeBackend({ threads });
  setBackend(backend);
  const bw0 = nativeMemoryBandwidth(256 << 20, 5, threads).read;
  console.log(
    `native backend (${backend.isa}), ${threads} threads; one 1B layer's matrices; decode m=1, prefill m=${prompt}`,
  );
  if (knob("HERD_BENCH_KQUANT") !== "int8") table(prompt, threads, bw0);
  int8AgainstF32();
}

/** µs per call of Q8_0 and Q4_0 matrices through `linear`, int8 path against f32-dequant, m = 1 and 8. */
function int8AgainstF32(): void {
  if (nativeInt8Dot(true) !== true) {
    console.log("int8 path: not taken on this CPU (no AVX2); nothing to compare");
    return;
  }
  const shapes = SHAPES.filter(([name]) => name !== "k_proj/v_proj");
  const wd = [8, 15, 4, 12, 12, 8, 12];
  console.log("\nQ8_0 / Q4_0: int8 activations (q8dot.cc) against f32 dequantise-and-FMA (quant.cc)");
  console.log(row(["type", "matrix", "m", "f32 µs", "int8 µs", "int8 ×", "int8 GB/s"], wd));
  let seed = 1000;
  for (const type of ["q8_0", "q4_0"] as const)
    for (const [name, n, k] of shapes) {
      const one = weight(type, n, k, seed).bytes;
      const ws = Array.from({ length: Math.min(160, Math.ceil((96 << 20) / one)) }, () =>
        weight(type, n, k, seed++),
      );
      for (const m of [1, 8]) {
        const x = fromArray(
          Float32Array.from({ length: m * k }, (_, i) => Math.sin(i) * 0.5),
          [m, k],
        );
        let next = 0;
        const best = { f32: Infinity, int8: Infinity };
        for (let round = 0; round < 3; round++)
          for (const path of ["f32", "int8"] as const) {
            nativeInt8Dot(path === "int8");
            const t = noGrad(() =>
              time(() => scope(() => void linear(x, ws[next++ % ws.length]!.w)), 0.2, 200),
            );
            best[path] = Math.min(best[path], t.best);
          }
        x.dispose();
        console.log(
          row(
            [
              type,
              name,
              m,
              (best.f32 * 1e6).toFixed(0),
              (best.int8 * 1e6).toFixed(0),
              (best.f32 / best.int8).toFixed(2),
              (one / best.int8 / GB).toFixed(1),
            ],
            wd,
          ),
        );
      }
      for (const w of ws) w.w.dispose();
    }
  nativeInt8Dot(knob("HERD_NATIVE_INT8_DOT"));
}

/** The table of every type (int8 path as the backend chose it). */
function table(prompt: number, threads: number, bw0: number): void {
  const types = ["f32", "bf16", "q8_0", "q4_0", "q4_k", "q5_k", "q6_k"];
  const results: { type: string; shape: string; m: number; s: number; flops: number; bytes: number }[] = [];
  let seed = 1;
  for (const type of types)
    for (const [name, n, k] of SHAPES) {
      // Enough copies of the matrix, used in turn, that they do not fit in the caches (≥ 96 MB): each
      // call streams its weights from memory, as a decode step does.
      const one = weight(type, n, k, seed).bytes;
      const ws = Array.from({ length: Math.min(160, Math.ceil((96 << 20) / one)) }, () =>
        weight(type, n, k, seed++),
      );
      for (const m of [1, prompt]) {
        const x = fromArray(
          Float32Array.from({ length: m * k }, (_, i) => Math.sin(i) * 0.5),
          [m, k],
        );
        let next = 0;
        const t = noGrad(() =>
          time(() => scope(() => void linear(x, ws[next++ % ws.length]!.w)), m === 1 ? 0.4 : 0.6, 400),
        );
        x.dispose();
        results.push({ type, shape: name, m, s: t.best, flops: 2 * m * n * k, bytes: one });
      }
      for (const w of ws) w.w.dispose();
    }
  const bw = Math.max(bw0, nativeMemoryBandwidth(256 << 20, 5, threads).read);
  console.log(`best streaming read bandwidth ${(bw / GB).toFixed(1)} GB/s (roofline of the decode GEMV)`);
  const wd = [8, 15, 10, 10, 10, 10, 12, 12, 12];
  console.log(
    row(["type", "matrix", "bits/w", "GEMV µs", "GFLOP/s", "GB/s", "of roofline", "GEMM ms", "GFLOP/s"], wd),
  );
  for (const type of types) {
    let decode = 0;
    let prefill = 0;
    let layerBytes = 0;
    for (const [i, [name, n, k]] of SHAPES.entries()) {
      const d = results.find((r) => r.type === type && r.shape === name && r.m === 1)!;
      const p = results.find((r) => r.type === type && r.shape === name && r.m === prompt)!;
      decode += PER_LAYER[i]! * d.s;
      prefill += PER_LAYER[i]! * p.s;
      layerBytes += PER_LAYER[i]! * d.bytes;
      console.log(
        row(
          [
            type,
            name,
            ((8 * d.bytes) / (n * k)).toFixed(2),
            (d.s * 1e6).toFixed(0),
            (d.flops / d.s / 1e9).toFixed(1),
            (d.bytes / d.s / GB).toFixed(1),
            `${((100 * d.bytes) / d.s / bw).toFixed(0)}%`,
            (p.s * 1e3).toFixed(2),
            (p.flops / p.s / 1e9).toFixed(1),
          ],
          wd,
        ),
      );
    }
    console.log(
      `  ${type}: a layer's matrices ${(layerBytes / 1e6).toFixed(1)} MB; ${LAYERS} layers' matrices alone: decode ${(1 / (LAYERS * decode)).toFixed(1)} tok/s (roofline ${(bw / (LAYERS * layerBytes)).toFixed(1)}), prefill ${(prompt / (LAYERS * prefill)).toFixed(0)} tok/s`,
    );
  }
}
