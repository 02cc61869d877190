// Evaluation throughput (`npm run bench -- eval`): items/s of multiple-choice scoring by log-likelihood
// with the shared prefix (one prefill of the context, the choices as KV-cache forks; src/eval/
// loglikelihood.ts) against the naive path (a full sequence per choice, as lm-evaluation-harness does),
// for MMLU-shaped items (a context of HERD_BENCH_PROMPT tokens, four one-token choices) and ARC-shaped
// ones (four choices of eight tokens), and items/s of GSM8K-shaped greedy generation (HERD_BENCH_DECODE
// new tokens after the same context). Models: HERD_BENCH_PRESET with random bf16 weights, the same
// quantised to Q8_0, and the `small` preset (bf16). Random ids stand in for text: speed does not depend
// on what the tokens say.

import { knob } from "../src/core/knobs.js";
import { scoreContinuations } from "../src/eval/loglikelihood.js";
import { generate } from "../src/generate/generate.js";
import { Llama } from "../src/model/llama.js";
import { preset } from "../src/model/presets.js";
import { quantizeWeights } from "../src/model/quantize.js";
import { initWeights } from "../src/model/weights.js";
import { env, row, time } from "./timing.js";

function ids(n: number, vocab: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return 1 + (s % (vocab - 1));
  });
}

function models(): [string, () => Llama][] {
  const name = knob("HERD_BENCH_PRESET");
  const c = preset(name);
  const small = preset("small");
  return [
    [`${name} bf16`, () => new Llama(c, initWeights(c, { seed: 1, dtype: "bf16" }))],
    [
      `${name} q8_0`,
      () => {
        const f32 = new Llama(c, initWeights(c, { seed: 1, dtype: "f32" }));
        const q = new Llama(c, quantizeWeights(f32, "q8_0"));
        for (const t of f32.weights.values()) if (t.rank === 2) t.dispose(); // the norms are shared
        return q;
      },
    ],
    ["small bf16", () => new Llama(small, initWeights(small, { seed: 1, dtype: "bf16" }))],
  ];
}

export async function run(): Promise<void> {
  const P = env("HERD_BENCH_PROMPT", 512);
  const D = env("HERD_BENCH_DECODE", 64);
  const widths = [22, 26, 12, 12, 10];
  console.log(`context ${P} tokens; generation ${D} new tokens (greedy)`);
  console.log(row(["model", "items", "shared it/s", "naive it/s", "speed-up"], widths));
  for (const [label, make] of models()) {
    const model = make();
    const V = model.config.vocabSize;
    const ctx = [model.config.bosTokenId ?? 1, ...ids(P - 1, V, 7)];
    for (const [kind, choices] of [
      ["MMLU (4 × 1 token)", [0, 1, 2, 3].map((i) => ids(1, V, 100 + i))],
      ["ARC (4 × 8 tokens)", [0, 1, 2, 3].map((i) => ids(8, V, 200 + i))],
    ] as const) {
      const shared = time(() => scoreContinuations(model, ctx, choices), 3, 10);
      const naive = time(() => scoreContinuations(model, ctx, choices, { path: "naive" }), 3, 10);
      console.log(
        row(
          [
            label,
            kind,
            (1 / shared.median).toFixed(2),
            (1 / naive.median).toFixed(2),
            `${(naive.median / shared.median).toFixed(2)}×`,
          ],
          widths,
        ),
      );
    }
    const gen = time(() => generate(model, ctx, { maxNewTokens: D, temperature: 0, stopIds: [] }), 3, 5);
    console.log(row([label, `GSM8K (${D} tokens)`, (1 / gen.median).toFixed(3), "", ""], widths));
    model.dispose();
  }
}
