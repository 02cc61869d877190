// Training benchmark: the `small` preset (~14M parameters) on random tokens, batch × seq tokens per
// step, forward (loss) and backward timed separately, then a whole optimiser step (forward, backward,
// clipping, AdamW), as training tokens/s and the model FLOPs it implies (6·N per token plus attention).
// Knobs: HERD_BENCH_TRAIN_SEQ (256), HERD_BENCH_TRAIN_BATCH (4), HERD_BENCH_PRESET_TRAIN (small).
import { performance } from "node:perf_hooks";
import { getBackend } from "../src/backends/index.js";
import { Llama } from "../src/model/llama.js";
import { flopsPerToken, paramCount, preset } from "../src/model/presets.js";
import { initWeights } from "../src/model/weights.js";
import { backward, clearTape, scope } from "../src/tensor/index.js";
import { PretrainOptimizer } from "../src/train/optimizer.js";
import { trainStep } from "../src/train/trainer.js";

const env = (name: string, fallback: number) => {
  const v = process.env[name];
  return v === undefined || v === "" ? fallback : Number(v);
};

export async function run(): Promise<void> {
  const name = process.env.HERD_BENCH_PRESET_TRAIN ?? "small";
  const T = env("HERD_BENCH_TRAIN_SEQ", 256);
  const B = env("HERD_BENCH_TRAIN_BATCH", 4);
  const c = preset(name);
  const model = new Llama(c, initWeights(c, { seed: 1 }), "bench");
  const opt = new PretrainOptimizer(model.parameters());
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + 13) % c.vocabSize);
  const targets = Int32Array.from({ length: B * T }, (_, i) => ids[(i + 1) % ids.length]!);
  const docIds = new Int32Array(B * T);
  const tokens = B * T;
  console.log(
    `preset ${name} (${(paramCount(c) / 1e6).toFixed(1)}M params), batch ${B} × seq ${T}, backend ${getBackend().name}`,
  );
  const reps = 3;
  let fwd = 0;
  let bwd = 0;
  for (let r = 0; r <= reps; r++) {
    scope(() => {
      const t0 = performance.now();
      const loss = model.loss(ids, targets, { batch: B, docIds });
      loss.item();
      const t1 = performance.now();
      backward(loss);
      const t2 = performance.now();
      if (r > 0) {
        fwd += (t1 - t0) / 1000;
        bwd += (t2 - t1) / 1000;
      }
    });
    clearTape();
    opt.zeroGrad();
  }
  fwd /= reps;
  bwd /= reps;
  let stepSecs = 0;
  const batch = { ids, targets, docIds, batch: B, seqLen: T };
  trainStep(model, opt, [batch], 1e-4);
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    trainStep(model, opt, [batch], 1e-4);
    stepSecs += (performance.now() - t0) / 1000 / reps;
  }
  const flops = flopsPerToken(c, T).training * tokens;
  console.log(`forward   ${(tokens / fwd).toFixed(0)} tok/s (${(fwd * 1000).toFixed(0)} ms)`);
  console.log(`backward  ${(tokens / bwd).toFixed(0)} tok/s (${(bwd * 1000).toFixed(0)} ms)`);
  console.log(
    `train step ${(tokens / stepSecs).toFixed(0)} tok/s (${(stepSecs * 1000).toFixed(0)} ms, ${(flops / stepSecs / 1e9).toFixed(2)} GFLOP/s model FLOPs)`,
  );
  opt.dispose();
  model.dispose();
}
