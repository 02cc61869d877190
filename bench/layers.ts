// Layer-level benchmarks of the engine: attention forward+backward at sequence 256 and 2048, and one
// Llama-style Transformer block forward+backward in tokens/s — each on every backend in the same run,
// with the ratio against the js reference — then a whole training step of the `small` preset (forward,
// backward, clipping, AdamW) on wasm and native, taken in alternation so both see the same machine
// load, with native's ratio against wasm.
import { performance } from "node:perf_hooks";
import { type Backend, backendByName, backendNames, setBackend } from "../src/backends/index.js";
import { Rng } from "../src/core/rng.js";
import { Llama } from "../src/model/llama.js";
import { paramCount, preset } from "../src/model/presets.js";
import { initWeights } from "../src/model/weights.js";
import {
  add,
  attention,
  backward,
  fromArray,
  linear,
  parameter,
  reshape,
  rmsNorm,
  rope,
  scope,
  sum,
  swiglu,
  type Tensor,
} from "../src/tensor/index.js";
import { PretrainOptimizer } from "../src/train/optimizer.js";
import { trainStep } from "../src/train/trainer.js";
import { row, time } from "./timing.js";

function rand(n: number, seed: number, s = 0.1): Float32Array {
  const r = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r.next() * 2 - 1) * s;
  return out;
}

function backends(): Backend[] {
  return backendNames().map((n) => backendByName(n));
}

function attentionBench(): void {
  const [heads, kvHeads, hd] = [8, 2, 64];
  console.log(
    `attention forward+backward (causal, ${heads} heads, ${kvHeads} KV heads, head dim ${hd}, batch 1)`,
  );
  const widths = [8, 8, 12, 12, 10, 8];
  console.log(row(["seq", "backend", "fwd ms", "fwd+bwd ms", "GFLOP/s", "vs js"], widths));
  for (const T of [256, 2048]) {
    // Causal attention does half the work of full attention: fwd 2 matmuls, bwd 5 (incl. recompute).
    const fwdFlops = 2 * 2 * T * T * hd * heads * 0.5;
    const totalFlops = fwdFlops * 3.5;
    let jsTime = 0;
    for (const b of backends()) {
      setBackend(b);
      const q = parameter(rand(T * heads * hd, 1), [1, T, heads, hd], "q");
      const k = parameter(rand(T * kvHeads * hd, 2), [1, T, kvHeads, hd], "k");
      const v = parameter(rand(T * kvHeads * hd, 3), [1, T, kvHeads, hd], "v");
      const budget = b.name === "js" ? 0.5 : 1.5;
      const fwd = time(() => scope(() => void attention(q, k, v, { causal: true }).dispose()), budget, 20);
      const both = time(
        () =>
          scope(() => {
            backward(sum(attention(q, k, v, { causal: true })));
          }),
        budget,
        20,
      );
      if (b.name === "js") jsTime = both.median;
      console.log(
        row(
          [
            T,
            b.name,
            (fwd.median * 1e3).toFixed(1),
            (both.median * 1e3).toFixed(1),
            (totalFlops / both.median / 1e9).toFixed(2),
            `${(jsTime / both.median).toFixed(2)}×`,
          ],
          widths,
        ),
      );
      for (const t of [q, k, v]) t.dispose();
    }
  }
}

function blockBench(): void {
  const [dim, heads, kvHeads, ffn, T] = [512, 8, 2, 1536, 256];
  const hd = dim / heads;
  console.log(
    `\nTransformer block forward+backward (dim ${dim}, ${heads}/${kvHeads} heads, FFN ${ffn}, seq ${T}, batch 1)`,
  );
  const widths = [8, 12, 12, 10, 8];
  console.log(row(["backend", "ms/step", "tokens/s", "GFLOP/s", "vs js"], widths));
  const params = 2 * dim * dim + 2 * dim * kvHeads * hd + 3 * dim * ffn;
  const flops = 6 * params * T + 3.5 * 2 * 2 * T * T * hd * heads * 0.5;
  const positions = Int32Array.from({ length: T }, (_, i) => i);
  const invFreq = Float32Array.from({ length: hd / 2 }, (_, i) => 500000 ** (-(2 * i) / hd));
  let jsTime = 0;
  for (const b of backends()) {
    setBackend(b);
    let seed = 10;
    const P = (shape: number[], name: string) =>
      parameter(
        rand(
          shape.reduce((x, y) => x * y),
          seed++,
          0.05,
        ),
        shape,
        name,
      );
    const w = {
      n1: fromArray(new Float32Array(dim).fill(1), [dim]).keep(),
      wq: P([dim, dim], "wq"),
      wk: P([kvHeads * hd, dim], "wk"),
      wv: P([kvHeads * hd, dim], "wv"),
      wo: P([dim, dim], "wo"),
      n2: fromArray(new Float32Array(dim).fill(1), [dim]).keep(),
      wg: P([ffn, dim], "wg"),
      wu: P([ffn, dim], "wu"),
      wd: P([dim, ffn], "wd"),
    };
    const x = P([1, T, dim], "x");
    const step = () =>
      scope(() => {
        const h = rmsNorm(x, w.n1, 1e-5);
        const q = rope(reshape(linear(h, w.wq), [1, T, heads, hd]), positions, invFreq);
        const k = rope(reshape(linear(h, w.wk), [1, T, kvHeads, hd]), positions, invFreq);
        const v = reshape(linear(h, w.wv), [1, T, kvHeads, hd]);
        const x2: Tensor = add(x, linear(reshape(attention(q, k, v), [1, T, dim]), w.wo));
        const h2 = rmsNorm(x2, w.n2, 1e-5);
        const y = add(x2, linear(swiglu(linear(h2, w.wg), linear(h2, w.wu)), w.wd));
        backward(sum(y));
      });
    const t = time(step, b.name === "js" ? 1 : 2, 20);
    if (b.name === "js") jsTime = t.median;
    console.log(
      row(
        [
          b.name,
          (t.median * 1e3).toFixed(1),
          (T / t.median).toFixed(0),
          (flops / t.median / 1e9).toFixed(2),
          `${(jsTime / t.median).toFixed(2)}×`,
        ],
        widths,
      ),
    );
    for (const p of [...Object.values(w), x]) p.dispose();
  }
}

export function trainStepBench(): void {
  const names = backendNames().filter((n) => n === "wasm" || n === "native");
  const [B, T, rounds] = [4, 256, 5];
  const c = preset("small");
  console.log(
    `\ntraining step, preset small (${(paramCount(c) / 1e6).toFixed(1)}M params), batch ${B} × seq ${T}, ${rounds} rounds alternating backends`,
  );
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + 13) % c.vocabSize);
  const targets = Int32Array.from({ length: B * T }, (_, i) => ids[(i + 1) % ids.length]!);
  const batch = { ids, targets, docIds: new Int32Array(B * T), batch: B, seqLen: T };
  const runs = names.map((name) => {
    setBackend(name);
    const model = new Llama(c, initWeights(c, { seed: 1 }), "bench");
    const opt = new PretrainOptimizer(model.parameters());
    trainStep(model, opt, [batch], 1e-4); // warm-up
    return { name, model, opt, samples: [] as number[] };
  });
  for (let r = 0; r < rounds; r++)
    for (const x of runs) {
      setBackend(x.name);
      const t0 = performance.now();
      trainStep(x.model, x.opt, [batch], 1e-4);
      x.samples.push((performance.now() - t0) / 1000);
    }
  const widths = [8, 10, 10, 10, 8];
  console.log(row(["backend", "ms/step", "best ms", "tokens/s", "vs wasm"], widths));
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  const wasm = runs.find((x) => x.name === "wasm");
  for (const x of runs) {
    const m = median(x.samples);
    const vs = wasm ? `${(median(wasm.samples) / m).toFixed(2)}×` : "-";
    const cells = [x.name, (m * 1e3).toFixed(1), (Math.min(...x.samples) * 1e3).toFixed(1), (B * T) / m, vs];
    console.log(
      row(
        cells.map((v) => (typeof v === "number" ? v.toFixed(0) : v)),
        widths,
      ),
    );
    x.opt.dispose();
    x.model.dispose();
  }
}

export async function run(): Promise<void> {
  attentionBench();
  blockBench();
  trainStepBench();
}
