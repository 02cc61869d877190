// Layer-level benchmarks of the engine: attention forward+backward at sequence 256 and 2048, and one
// Llama-style Transformer block forward+backward in tokens/s — each on every backend in the same run,
// with the ratio against the js reference.
import { type Backend, backendByName, backendNames, setBackend } from "../src/backends/index.js";
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
import { row, time } from "./timing.js";

function rand(n: number, seed: number, s = 0.1): Float32Array {
  let x = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = ((x / 4294967296) * 2 - 1) * s;
  }
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

export async function run(): Promise<void> {
  attentionBench();
  blockBench();
}
