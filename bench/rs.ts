// Rejection sampling throughput (spec §7.7: the paper reports > 2× from sharing the prompt): K samples of
// one prompt generated as K independent generate() calls (a prefill each, then batch-1 decode steps)
// against generateShared (one prefill, the cache copied into K rows, the K sequences decoded as one
// batch), on a random model of HERD_BENCH_PRESET_TRAIN with bf16 weights. No stop ids, so every sample
// runs the full decode length and both sides do the same tokens; the two must produce the same samples
// (the benchmark says whether they did). Best of HERD_BENCH_REPEATS runs each, alternated.
// Knobs: HERD_BENCH_PRESET_TRAIN, HERD_BENCH_PROMPT (64), HERD_BENCH_DECODE (32), HERD_BENCH_RS_K (16),
// HERD_BENCH_REPEATS (README's knobs table).
import { performance } from "node:perf_hooks";
import { getBackend } from "../src/backends/index.js";
import { knob } from "../src/core/knobs.js";
import { generate } from "../src/generate/generate.js";
import { generateShared } from "../src/generate/shared.js";
import { Llama } from "../src/model/llama.js";
import { paramCount, preset } from "../src/model/presets.js";
import { initWeights } from "../src/model/weights.js";
import { env } from "./timing.js";

export async function run(): Promise<void> {
  const name = knob("HERD_BENCH_PRESET_TRAIN");
  const P = env("HERD_BENCH_PROMPT", 64);
  const N = env("HERD_BENCH_DECODE", 32);
  const K = env("HERD_BENCH_RS_K", 16);
  const reps = env("HERD_BENCH_REPEATS", 3);
  const c = preset(name);
  const model = new Llama(c, initWeights(c, { seed: 1, dtype: "bf16" }), "bench");
  const prompt = Array.from({ length: P }, (_, i) => (i * 7919 + 13) % c.vocabSize);
  const seeds = Array.from({ length: K }, (_, i) => i + 1);
  const sampling = { temperature: 1, topP: 0.9, maxNewTokens: N, stopIds: [] as number[] };
  console.log(
    `preset ${name} (${(paramCount(c) / 1e6).toFixed(1)}M params, bf16), prompt ${P}, ${K} samples × ${N} tokens, backend ${getBackend().name}`,
  );
  const independent = () => seeds.map((seed) => generate(model, prompt, { ...sampling, seed }).tokens);
  const shared = () => generateShared(model, prompt, { ...sampling, seeds }).samples.map((s) => s.tokens);
  const same = JSON.stringify(independent()) === JSON.stringify(shared()); // also the warm-up
  const best = { independent: Number.POSITIVE_INFINITY, shared: Number.POSITIVE_INFINITY };
  for (let r = 0; r < reps; r++)
    for (const [key, fn] of [
      ["independent", independent],
      ["shared", shared],
    ] as const) {
      const t0 = performance.now();
      fn();
      best[key] = Math.min(best[key], (performance.now() - t0) / 1000);
    }
  for (const [key, secs] of Object.entries(best))
    console.log(
      `${key.padEnd(12)} ${(secs * 1000).toFixed(0)} ms: ${(K / secs).toFixed(2)} samples/s, ${((K * N) / secs).toFixed(1)} new tokens/s`,
    );
  console.log(
    `rs: shared prompt + batched decode ×${(best.independent / best.shared).toFixed(2)} samples/s against ${K} independent generations (best of ${reps}); same samples: ${same ? "yes" : "NO"}`,
  );
  model.dispose();
}
