// Part of `npm run bench -- serve`: what LoRA adapters cost a continuous-batching step. One
// Llama.forwardRows step of 16 rows (each a batch-1 KV cache holding a 64-token prompt; a decode step feeds
// 1 token a row, a prefill step 32) on the `small` preset's shape (bf16, its own 4096-id vocabulary so
// the output head does not hide the layers), base-only against the same step with adapters: every row one
// adapter, four adapters mixed (rows round-robin), sixteen (one a row), half the rows on the base — at
// rank 16 on all seven linear modules and at rank 8 on q/v. The cases are interleaved (one call each in
// turn) so a busy machine's drift falls on all alike; median seconds per step, and the ratio to base.
import { performance } from "node:perf_hooks";
import { getBackend } from "../src/backends/index.js";
import { Rng } from "../src/core/rng.js";
import {
  type BatchRow,
  initWeights,
  KVCache,
  Llama,
  type LowRankDelta,
  layerName,
  preset,
  type RowAdapter,
} from "../src/model/index.js";
import { LORA_PARTS, LORA_TARGETS, type LoraTarget } from "../src/posttrain/lora.js";
import { noGrad } from "../src/tensor/tape.js";
import { scope, zeros } from "../src/tensor/tensor.js";

function adapter(model: Llama, targets: readonly LoraTarget[], rank: number, seed: number): RowAdapter {
  const rng = new Rng(seed);
  const out = new Map<string, LowRankDelta>();
  for (let l = 0; l < model.config.numHiddenLayers; l++)
    for (const t of targets) {
      const name = layerName(l, LORA_PARTS[t]);
      const [o, i] = model.matrix(name)!.shape as [number, number];
      const A = zeros([rank, i]).keep();
      const B = zeros([o, rank]).keep();
      for (const m of [A, B]) for (let k = 0; k < m.size; k++) m.data[k] = (rng.next() - 0.5) * 0.02;
      out.set(name, { A, B, scale: 2 });
    }
  return out;
}

export async function run(): Promise<void> {
  const c = { ...preset("small"), maxPositionEmbeddings: 128 };
  const model = new Llama(c, initWeights(c, { seed: 1, dtype: "bf16" }), "init");
  const R = 16;
  const P = 64;
  const reps = 15;
  console.log(
    `LoRA in a batched step: small shape (bf16, vocab ${c.vocabSize}), ${R} rows of a ${P}-token cache, ${getBackend().name} backend, median of ${reps}`,
  );
  noGrad(() => {
    const caches = Array.from({ length: R }, () => new KVCache(c, 1, P + 32));
    const prompt = Int32Array.from({ length: R * P }, (_, i) => 1 + ((i * 37) % (c.vocabSize - 1)));
    scope(() =>
      model.forwardRows(
        prompt,
        caches.map((cache) => ({ cache, tokens: P })),
      ),
    );
    for (const [label, targets, rank] of [
      ["rank 16, all linear", LORA_TARGETS, 16],
      ["rank 8, q/v", ["q_proj", "v_proj"], 8],
    ] as const) {
      const ads = Array.from({ length: R }, (_, i) => adapter(model, [...targets], rank, i + 1));
      const cases: [string, (i: number) => RowAdapter | null][] = [
        ["base only", () => null],
        ["1 adapter, all rows", () => ads[0]!],
        ["4 adapters mixed", (i) => ads[i % 4]!],
        ["16 adapters, 1 a row", (i) => ads[i]!],
        ["half base, 4 adapters", (i) => (i % 2 === 0 ? null : ads[(i >> 1) % 4]!)],
      ];
      for (const tokens of [1, 32]) {
        const ids = Int32Array.from({ length: R * tokens }, (_, i) => 1 + ((i * 53) % (c.vocabSize - 1)));
        const samples = cases.map(() => [] as number[]);
        for (let r = 0; r < reps + 1; r++)
          for (const [k, [, pick]] of cases.entries()) {
            const rows: BatchRow[] = caches.map((cache, i) => ({ cache, tokens, adapter: pick(i) }));
            const t0 = performance.now();
            scope(() => model.forwardRows(ids, rows));
            if (r > 0) samples[k]!.push((performance.now() - t0) / 1000);
            for (const cache of caches) cache.length = P;
          }
        const med = samples.map((s) => s.sort((a, b) => a - b)[Math.floor(s.length / 2)]!);
        console.log(
          `  ${label}, ${tokens === 1 ? "decode step (1 token a row)" : `prefill step (${tokens} tokens a row)`}:`,
        );
        for (const [k, [name]] of cases.entries())
          console.log(
            `    ${name.padEnd(24)} ${(med[k]! * 1000).toFixed(1).padStart(8)} ms  ×${(med[k]! / med[0]!).toFixed(2)}`,
          );
      }
      for (const a of ads)
        for (const d of a.values()) {
          d.A.dispose();
          d.B.dispose();
        }
    }
    for (const cache of caches) cache.dispose();
  });
  model.dispose();
}
