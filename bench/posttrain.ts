// Post-training benchmark (issue #16): a full-weight SFT step on packed dialogs — B rows of T tokens,
// four dialogs a row, the second half of each supervised — as tokens/s and MFU (src/train/mfu.ts's model
// FLOPs over the measured f32 peak of the threads used), and a DPO step on the same tokens (two pairs a
// row: chosen and rejected of a shared prompt, policy forward + per-token log-probs + backward; the
// reference log-probabilities are cached, so not part of a step) against it. Both include clipping and
// the AdamW update. Active backend only. Knobs (shared with the train benchmark): HERD_BENCH_PRESET_TRAIN,
// HERD_BENCH_TRAIN_SEQ, HERD_BENCH_TRAIN_BATCH, HERD_BENCH_TRAIN_REPS.
import { performance } from "node:perf_hooks";
import { getBackend } from "../src/backends/index.js";
import { backendThreads, cpuPeak } from "../src/backends/peak.js";
import { knob } from "../src/core/knobs.js";
import { Llama } from "../src/model/llama.js";
import { paramCount, preset } from "../src/model/presets.js";
import { initWeights } from "../src/model/weights.js";
import type { PreferenceExample, SftExample } from "../src/posttrain/data.js";
import { dpoStep, pairLogps } from "../src/posttrain/dpo.js";
import { packExamples, sftStep } from "../src/posttrain/sft.js";
import { trainingFlopsPerToken } from "../src/train/mfu.js";
import { PretrainOptimizer } from "../src/train/optimizer.js";
import { env, row } from "./timing.js";

const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function ids(n: number, seed: number, vocab: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => (seed * 7919 + i * 104729 + 13) % vocab);
}

export async function run(): Promise<void> {
  const name = knob("HERD_BENCH_PRESET_TRAIN");
  const T = env("HERD_BENCH_TRAIN_SEQ", 256);
  const B = env("HERD_BENCH_TRAIN_BATCH", 4);
  const reps = env("HERD_BENCH_TRAIN_REPS", 5);
  const c = preset(name);
  const q = Math.floor(T / 4);
  if (q < 4) throw new Error(`bench posttrain: HERD_BENCH_TRAIN_SEQ ${T} is too short (4 dialogs a row)`);
  const model = new Llama(c, initWeights(c, { seed: 1 }), "bench").trainable();
  const opt = new PretrainOptimizer(model.parameters());
  const backend = getBackend();
  const peak = cpuPeak(backendThreads(backend), backend);
  console.log(
    `preset ${name} (${(paramCount(c) / 1e6).toFixed(1)}M params), ${B} rows × ${T} tokens, backend ${backend.name}, ` +
      `peak ${(peak.flops / 1e9).toFixed(0)} GFLOP/s (${peak.isa})`,
  );
  // SFT: four dialogs of T/4 tokens a row, the second half of each supervised.
  const dialogs: SftExample[] = [];
  for (let i = 0; i < 4 * B; i++)
    dialogs.push({
      line: i,
      ids: ids(q, i, c.vocabSize),
      supervised: Uint8Array.from({ length: q }, (_, j) => (j >= q / 2 ? 1 : 0)),
    });
  const rows = Array.from({ length: B }, (_, r) => dialogs.slice(4 * r, 4 * r + 4));
  const packed = packExamples(rows, T);
  // DPO: two pairs a row (prompt q/2, each response q/2 → four sequences of q tokens).
  const pairs: PreferenceExample[] = [];
  for (let i = 0; i < 2 * B; i++) {
    const resp = (s: number) => ({
      ids: ids(q - Math.floor(q / 2), s, c.vocabSize),
      counted: new Uint8Array(q - Math.floor(q / 2)).fill(1),
      supervised: new Uint8Array(q - Math.floor(q / 2)).fill(1),
    });
    pairs.push({
      line: i,
      prompt: ids(Math.floor(q / 2), 1000 + i, c.vocabSize),
      chosen: resp(2000 + i),
      rejected: resp(3000 + i),
    });
  }
  const reference = pairLogps(model, pairs, T, pairs.length);
  const settings = {
    beta: 0.1,
    nllWeight: 0.2,
    reduction: "token-mean" as const,
    seqLen: T,
    micro: pairs.length,
  };
  const idx = pairs.map((_, i) => i);
  const timeStep = (fn: () => void) => {
    const out: number[] = [];
    for (let r = 0; r <= reps; r++) {
      const t0 = performance.now();
      fn();
      opt.update(1e-6);
      opt.zeroGrad();
      if (r > 0) out.push((performance.now() - t0) / 1000);
    }
    return median(out);
  };
  const sft = timeStep(() => sftStep(model, [packed]));
  const dpo = timeStep(() => dpoStep(model, pairs, reference, idx, settings));
  const tokens = B * T;
  const flops = tokens * trainingFlopsPerToken(c, q);
  const widths = [8, 10, 10, 8];
  console.log(row(["step", "ms", "tok/s", "MFU %"], widths));
  for (const [part, s] of [
    ["sft", sft],
    ["dpo", dpo],
  ] as const)
    console.log(
      row(
        [part, (s * 1000).toFixed(0), (tokens / s).toFixed(0), ((100 * flops) / s / peak.flops).toFixed(2)],
        widths,
      ),
    );
  console.log(`DPO step / SFT step on the same tokens: ${(dpo / sft).toFixed(2)}×`);
  opt.dispose();
  model.dispose();
}
