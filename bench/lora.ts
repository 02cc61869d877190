// LoRA training step on a frozen bf16 base: forward + backward + AdamW on the adapter of a model of the
// HERD_BENCH_LORA_PRESET shape (default the 1B; random bf16 weights, never widened whole), rank 16 on all
// seven linear modules, HERD_BENCH_LORA_SEQ tokens per step, with activation recomputation. Reports
// tokens/s and the backend memory high-water mark above the weights, beside a forward of the base alone
// (adapter switched off, no backward) on the same tokens as the baseline.
import { performance } from "node:perf_hooks";
import { getBackend } from "../src/backends/index.js";
import { knob } from "../src/core/knobs.js";
import { Llama } from "../src/model/llama.js";
import { paramCount, preset } from "../src/model/presets.js";
import { initWeights } from "../src/model/weights.js";
import { applyLora } from "../src/posttrain/lora.js";
import { AdamW, backward, peakBytes, scope } from "../src/tensor/index.js";
import { env } from "./timing.js";

export async function run(): Promise<void> {
  const name = knob("HERD_BENCH_LORA_PRESET");
  const T = env("HERD_BENCH_LORA_SEQ", 256);
  const c = { ...preset(name), maxPositionEmbeddings: Math.max(T, 8) };
  const model = new Llama(c, initWeights(c, { seed: 1, dtype: "bf16" }), "bench");
  model.recompute = true;
  const lora = applyLora(model, { rank: 16, alpha: 32 });
  const trainable = lora.parameters().reduce((s, p) => s + p.size, 0);
  const opt = new AdamW(lora.parameters(), { lr: 1e-4, weightDecay: 0 });
  const ids = Int32Array.from({ length: T }, (_, i) => (i * 7919 + 13) % c.vocabSize);
  const targets = Int32Array.from({ length: T }, (_, i) => ids[(i + 1) % T]!);
  console.log(
    `${name} shape (${(paramCount(c) / 1e6).toFixed(0)}M params, bf16 base), LoRA r16 on all linear modules (${(trainable / 1e6).toFixed(2)}M trainable), ${T} tokens/step, backend ${getBackend().name}`,
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
    `lora step      ${(secs * 1000).toFixed(0)} ms (${(T / secs).toFixed(1)} tok/s), peak ${(m.peak - m.start) / 2 ** 20 < 10 ? ((m.peak - m.start) / 2 ** 20).toFixed(2) : ((m.peak - m.start) / 2 ** 20).toFixed(0)} MiB above weights`,
  );
  const f0 = performance.now();
  lora.disabled(() => scope(() => model.loss(ids, targets).item()));
  const fsecs = (performance.now() - f0) / 1000;
  console.log(
    `base forward   ${(fsecs * 1000).toFixed(0)} ms (${(T / fsecs).toFixed(1)} tok/s), adapter off, no backward`,
  );
  opt.dispose();
  model.dispose();
}
