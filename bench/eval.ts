// Evaluation throughput (`npm run bench -- eval`): items/s of a subject's worth of MMLU-shaped items
// scored by log-likelihood and of GSM8K-shaped greedy generations, on the paths src/eval/ offers:
// - naive: lm-evaluation-harness's way, every request from scratch (each choice its own full sequence
//   with logits at every position; each generation prefills its whole prompt);
// - item: one prefill of each item's context, the choices scored from it as a batch (loglikelihood.ts);
// - prefix: the few-shot prefix every item of the subject shares prefilled once (the harness.ts path),
//   each item computing only its own question from a copy of that cache, then its choices or generation.
// An item is a few-shot prefix of HERD_BENCH_PROMPT tokens (default 512, about MMLU's 5 shots or a
// third of GSM8K's 8), a 64-token question of its own, and four one-token choices (MMLU) or
// HERD_BENCH_DECODE new tokens (GSM8K, default 64). A run times 3 items (the prefix path pays its one
// prefill among them; a real subject has ~250, so its per-item cost is lower still) — the naive MMLU path
// only 1 at the 1B shape, where it takes minutes. Models: HERD_BENCH_PRESET with random bf16 weights, the
// same quantised to Q8_0, and the `small` preset (bf16). Random ids stand in for text: speed does not
// depend on what the tokens say.
import { performance } from "node:perf_hooks";
import { knob } from "../src/core/knobs.js";
import { scoreContinuations } from "../src/eval/loglikelihood.js";
import { generate } from "../src/generate/generate.js";
import { KVCache } from "../src/model/kvcache.js";
import { Llama } from "../src/model/llama.js";
import { preset } from "../src/model/presets.js";
import { quantizeWeights } from "../src/model/quantize.js";
import { initWeights } from "../src/model/weights.js";
import { noGrad } from "../src/tensor/tape.js";
import { scope } from "../src/tensor/tensor.js";
import { env, row } from "./timing.js";

const ITEMS = 3;
const QUESTION = 64;

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

/** Seconds of one call. */
function once(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}

/** The prefix prefilled into a batch-1 cache (what harness.ts does once per subtask). */
function prefill(model: Llama, prefix: readonly number[]): KVCache {
  const cache = new KVCache(model.config, 1, prefix.length);
  noGrad(() => scope(() => model.forward(Int32Array.from(prefix), { cache, logits: "last" })));
  return cache;
}

export async function run(): Promise<void> {
  const P = env("HERD_BENCH_PROMPT", 512);
  const D = env("HERD_BENCH_DECODE", 64);
  const widths = [22, 20, 12, 12, 12, 18];
  console.log(
    `${ITEMS} items of one subject: a ${P}-token few-shot prefix, a ${QUESTION}-token question each; GSM8K: ${D} new tokens (greedy)`,
  );
  console.log(row(["model", "items", "naive it/s", "item it/s", "prefix it/s", "prefix / naive"], widths));
  for (const [label, make] of models()) {
    const model = make();
    const V = model.config.vocabSize;
    const big = model.config.hiddenSize >= 1024;
    const prefix = [model.config.bosTokenId ?? 1, ...ids(P - 1, V, 7)];
    const items = Array.from({ length: ITEMS }, (_, i) => [...prefix, ...ids(QUESTION, V, 50 + i)]);
    const choices = [0, 1, 2, 3].map((i) => ids(1, V, 100 + i));
    once(() => scoreContinuations(model, ids(16, V, 3), choices)); // warm-up
    const shared = (work: (cache: KVCache, item: number[]) => void) => () => {
      const cache = prefill(model, prefix);
      try {
        for (const item of items) work(cache, item);
      } finally {
        cache.dispose();
      }
    };

    const naiveItems = big ? 1 : ITEMS;
    const mmlu = {
      naive:
        naiveItems /
        once(() => {
          for (const item of items.slice(0, naiveItems))
            scoreContinuations(model, item, choices, { path: "naive" });
        }),
      item:
        ITEMS /
        once(() => {
          for (const item of items) scoreContinuations(model, item, choices);
        }),
      prefix:
        ITEMS / once(shared((cache, item) => scoreContinuations(model, item, choices, { prefix: cache }))),
    };
    const gen = { maxNewTokens: D, temperature: 0, stopIds: [] };
    const gsm = {
      naive:
        ITEMS /
        once(() => {
          for (const item of items) generate(model, item, gen);
        }),
      prefix:
        ITEMS /
        once(
          shared((cache, item) => {
            const fork = cache.selectRows([0], item.length + D) as KVCache;
            try {
              generate(model, item.slice(P), { ...gen, cache: fork });
            } finally {
              fork.dispose();
            }
          }),
        ),
    };
    const f = (x: number) => (x < 1 ? x.toFixed(3) : x.toFixed(2));
    console.log(
      row(
        [
          label,
          "MMLU (4 × 1 token)",
          f(mmlu.naive),
          f(mmlu.item),
          f(mmlu.prefix),
          `${(mmlu.prefix / mmlu.naive).toFixed(1)}×`,
        ],
        widths,
      ),
    );
    console.log(
      row(
        [
          label,
          `GSM8K (${D} tokens)`,
          f(gsm.naive),
          "",
          f(gsm.prefix),
          `${(gsm.prefix / gsm.naive).toFixed(2)}×`,
        ],
        widths,
      ),
    );
    model.dispose();
  }
}
