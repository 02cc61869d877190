// Activation recomputation benchmark: one training forward+backward of the `small` preset with and
// without `recompute` (Llama keeps only each block's input and recomputes the block in backward), as
// the high-water mark of backend memory during the step above what was held before it (weights and
// their gradients included) and the time per step, both measured in this run.
// Knobs: HERD_BENCH_RECOMPUTE_SEQ, _BATCH, _REPS and HERD_BENCH_PRESET_TRAIN (README's knobs table).

import { performance } from "node:perf_hooks";
import { getBackend } from "../src/backends/index.js";
import { knob } from "../src/core/knobs.js";
import { Llama } from "../src/model/llama.js";
import { paramCount, preset } from "../src/model/presets.js";
import { initWeights } from "../src/model/weights.js";
import { backward, peakBytes, scope } from "../src/tensor/index.js";
import { env } from "./timing.js";

export async function run(): Promise<void> {
  const name = knob("HERD_BENCH_PRESET_TRAIN");
  const T = env("HERD_BENCH_RECOMPUTE_SEQ", 512);
  const B = env("HERD_BENCH_RECOMPUTE_BATCH", 4);
  const c = preset(name);
  const model = new Llama(c, initWeights(c, { seed: 1 }), "bench").trainable();
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + 13) % c.vocabSize);
  const targets = Int32Array.from({ length: B * T }, (_, i) => ids[(i + 1) % ids.length]!);
  const docIds = new Int32Array(B * T);
  console.log(
    `preset ${name} (${(paramCount(c) / 1e6).toFixed(1)}M params, ${c.numHiddenLayers} layers), batch ${B} × seq ${T}, backend ${getBackend().name}`,
  );
  const step = (recompute: boolean) =>
    scope(() => {
      const loss = model.loss(ids, targets, { batch: B, docIds, recompute });
      loss.item();
      backward(loss);
    });
  const reps = env("HERD_BENCH_RECOMPUTE_REPS", 4);
  const rows = [false, true].map((recompute) => ({ recompute, peak: 0, secs: Number.POSITIVE_INFINITY }));
  for (const recompute of [false, true]) step(recompute); // warm-up; gradients now exist
  // Alternate the two so a change in machine load hits both alike; keep the best time of each.
  for (let r = 0; r < reps; r++)
    for (const row of rows) {
      const t0 = performance.now();
      const m = peakBytes(() => step(row.recompute));
      row.secs = Math.min(row.secs, (performance.now() - t0) / 1000);
      row.peak = Math.max(row.peak, m.peak - m.start);
    }
  const [off, on] = rows as [(typeof rows)[0], (typeof rows)[0]];
  for (const r of rows)
    console.log(
      `recompute ${r.recompute ? "on " : "off"}  peak ${(r.peak / 2 ** 20).toFixed(1)} MiB above weights+grads, step ${(r.secs * 1000).toFixed(0)} ms (${((B * T) / r.secs).toFixed(0)} tok/s)`,
    );
  console.log(
    `recompute: peak memory ×${(on.peak / off.peak).toFixed(2)}, step time ×${(on.secs / off.secs).toFixed(2)} (best of ${reps})`,
  );
  model.dispose();
}
