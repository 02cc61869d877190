// LoRA training step on a frozen base: forward + backward + AdamW on the adapter of a model of the
// HERD_BENCH_LORA_PRESET shape (default the 1B; random weights, never widened whole), rank 16 on all
// seven linear modules, HERD_BENCH_LORA_SEQ tokens per step, with activation recomputation, on a bf16
// base and on the same base quantised to Q8_0. Reports tokens/s and the backend memory high-water mark
// above the weights, beside a forward of the base alone (adapter switched off, no backward) on the same
// tokens as the baseline. Then the input gradient dX = dY·W through one frozen matrix of the shape's FFN
// (bf16 and Q8_0, the backend's kernel or fallbacks.ts's block-widening one) against an f32 matmul of the
// same FLOPs: what the frozen base's backward costs over a plain one.
import { performance } from "node:perf_hooks";
import { kernelOf, supports } from "../src/backends/fallbacks.js";
import { getBackend } from "../src/backends/index.js";
import { knob } from "../src/core/knobs.js";
import { Llama } from "../src/model/llama.js";
import { paramCount, preset } from "../src/model/presets.js";
import { initWeights } from "../src/model/weights.js";
import { applyLora } from "../src/posttrain/lora.js";
import {
  AdamW,
  backward,
  peakBytes,
  type QuantTensor,
  quantize,
  scope,
  type Tensor,
  zeros,
} from "../src/tensor/index.js";
import { env, time } from "./timing.js";

const mib = (b: number) => (b / 2 ** 20 < 10 ? (b / 2 ** 20).toFixed(2) : (b / 2 ** 20).toFixed(0));

function stepOn(dtype: "bf16" | "q8_0", name: string, T: number): void {
  const c = { ...preset(name), maxPositionEmbeddings: Math.max(T, 8) };
  const ws = initWeights(c, { seed: 1, dtype: "bf16" });
  const tensors = new Map<string, Tensor | QuantTensor>();
  for (const [n, t] of ws) {
    if (dtype === "q8_0" && t.rank === 2) {
      tensors.set(n, quantize(t, "q8_0"));
      t.dispose();
    } else tensors.set(n, t);
  }
  const model = new Llama(c, tensors, "bench");
  model.recompute = true;
  const lora = applyLora(model, { rank: 16, alpha: 32 });
  const trainable = lora.parameters().reduce((s, p) => s + p.size, 0);
  const opt = new AdamW(lora.parameters(), { lr: 1e-4, weightDecay: 0 });
  const ids = Int32Array.from({ length: T }, (_, i) => (i * 7919 + 13) % c.vocabSize);
  const targets = Int32Array.from({ length: T }, (_, i) => ids[(i + 1) % T]!);
  let weightBytes = 0;
  for (const t of model.weights.values()) weightBytes += t.size * (t.dtype === "f32" ? 4 : 2);
  for (const q of model.quantized.values()) weightBytes += q.blocks.length;
  console.log(
    `${name} shape (${(paramCount(c) / 1e6).toFixed(0)}M params, ${dtype} base, ${mib(weightBytes)} MiB of weights), LoRA r16 on all linear modules (${(trainable / 1e6).toFixed(2)}M trainable), ${T} tokens/step, backend ${getBackend().name}`,
  );
  const step = () =>
    scope(() => {
      const loss = model.loss(ids, targets);
      loss.item();
      backward(loss);
      opt.update();
      opt.zeroGrad();
    });
  step(); // warm-up: optimiser state and gradients exist from here on
  const t0 = performance.now();
  const m = peakBytes(step);
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `  lora step      ${(secs * 1000).toFixed(0)} ms (${(T / secs).toFixed(1)} tok/s), peak ${mib(m.peak - m.start)} MiB above weights`,
  );
  const f0 = performance.now();
  lora.disabled(() => scope(() => model.loss(ids, targets).item()));
  const fsecs = (performance.now() - f0) / 1000;
  console.log(
    `  base forward   ${(fsecs * 1000).toFixed(0)} ms (${(T / fsecs).toFixed(1)} tok/s), adapter off, no backward`,
  );
  opt.dispose();
  model.dispose();
}

/** dX = dY·W for W [n, k] frozen in bf16 / Q8_0 against the f32 matmul of the same shape. */
export function inputGradient(n: number, k: number, m: number): void {
  const backend = getBackend();
  const f32 = zeros([n, k]).keep();
  for (let i = 0; i < f32.size; i++) f32.data[i] = Math.sin(i * 0.37) * 0.02;
  const bf16 = f32.toDtype("bf16");
  const q = quantize(f32, "q8_0");
  const dy = backend.alloc(m * n);
  const dx = backend.alloc(m * k);
  for (let i = 0; i < dy.length; i++) dy[i] = Math.sin(i) * 1e-3;
  const flops = 2 * m * n * k;
  const show = (what: string, t: { best: number }) =>
    console.log(
      `  ${what.padEnd(50)} ${(t.best * 1000).toFixed(1)} ms (${(flops / t.best / 1e9).toFixed(1)} GFLOP/s)`,
    );
  console.log(`input gradient dX [${m}, ${k}] = dY [${m}, ${n}] · W [${n}, ${k}], backend ${backend.name}`);
  show(
    "f32 matmul (a trainable W)",
    time(() =>
      backend.matmul(dy, f32.data, dx, {
        batch: 1,
        m,
        n: k,
        k: n,
        transA: false,
        transB: false,
        strideA: 0,
        strideB: 0,
        strideC: 0,
        accumulate: false,
      }),
    ),
  );
  const own = (op: "matmulBf16Grad" | "matmulQuantGrad") =>
    supports(backend, op)
      ? "own kernel"
      : `fallback: ${op === "matmulBf16Grad" ? "widen" : "dequantise"} blocks + matmul`;
  const gb = kernelOf(backend, "matmulBf16Grad");
  show(
    `bf16 W (${own("matmulBf16Grad")})`,
    time(() => gb(dy, bf16.halfBits, dx, m, n, k, false)),
  );
  const gq = kernelOf(backend, "matmulQuantGrad");
  show(
    `Q8_0 W (${own("matmulQuantGrad")})`,
    time(() => gq(dy, q.blocks, dx, m, n, k, "q8_0", false)),
  );
  backend.free(dy);
  backend.free(dx);
  for (const t of [f32, bf16, q]) t.dispose();
}

export async function run(): Promise<void> {
  const name = knob("HERD_BENCH_LORA_PRESET");
  const T = env("HERD_BENCH_LORA_SEQ", 256);
  stepOn("bf16", name, T);
  stepOn("q8_0", name, T);
  const c = preset(name);
  inputGradient(c.intermediateSize, c.hiddenSize, T);
}
