// The decode step captured as a graph and replayed by the native backend in one call (Llama.decodeGraph,
// src/tensor/graph.ts, native/graph.cc) against the op-by-op path (HERD_FUSED_DECODE=0): the same logits
// bit for bit at every step, for bf16, Q8_0 and Q4_0 weights, on every instruction set (AVX2 and
// portable in child processes), through a KV cache that grows while decoding (a recapture), with long
// rows read through the native backend's packed copies; the cases left to the op path (document ids, f32
// weights) still agree; and a malformed graph is refused with a message, not read out of bounds.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, test } from "node:test";
import { pathToFileURL } from "node:url";
import { backendNames, getBackend, setBackend } from "../../src/backends/index.js";
import { reloadKnobs } from "../../src/core/knobs.js";
import { initWeights, KVCache, Llama, preset, quantizeWeights } from "../../src/model/index.js";
import { noGrad, scope } from "../../src/tensor/index.js";
import { repoPath } from "../helpers.js";

const hasNative = backendNames().includes("native");
const initial = getBackend();
const fusedEnv = process.env.HERD_FUSED_DECODE;
after(() => {
  setBackend(initial);
  if (fusedEnv === undefined) delete process.env.HERD_FUSED_DECODE;
  else process.env.HERD_FUSED_DECODE = fusedEnv;
  reloadKnobs();
});

const cfg = { ...preset("tiny"), maxPositionEmbeddings: 64 };

function model(format: "bf16" | "q8_0" | "q4_0"): Llama {
  if (format === "bf16") return new Llama(cfg, initWeights(cfg, { seed: 11, dtype: "bf16" }));
  const f32 = new Llama(cfg, initWeights(cfg, { seed: 11, dtype: "f32" }));
  return new Llama(cfg, quantizeWeights(f32, format));
}

/** Logits of a 5-token prefill and 12 decode steps (the cache starts at 4 tokens, so it grows twice). */
function run(m: Llama, fused: boolean, docs = false, config = cfg): Float32Array[] {
  process.env.HERD_FUSED_DECODE = fused ? "1" : "0";
  reloadKnobs();
  const cache = new KVCache(config, 1, 4);
  const step = (ids: number[]) =>
    noGrad(() =>
      scope(() => {
        const opts = docs ? { cache, docIds: new Int32Array(ids.length) } : { cache };
        return Float32Array.from(m.forward(Int32Array.from(ids), { ...opts, logits: "last" }).data);
      }),
    );
  const out = [step([0, 5, 9, 22, 7])];
  for (let i = 0; i < 12; i++) out.push(step([(i * 131 + 17) % cfg.vocabSize]));
  cache.dispose();
  return out;
}

function assertSame(a: Float32Array[], b: Float32Array[], what: string): void {
  assert.equal(a.length, b.length);
  for (let s = 0; s < a.length; s++)
    for (let j = 0; j < a[s]!.length; j++)
      if (!Object.is(a[s]![j], b[s]![j]))
        assert.fail(`${what}: step ${s} logit ${j}: graph ${b[s]![j]} vs op by op ${a[s]![j]}`);
}

for (const format of ["bf16", "q8_0", "q4_0"] as const) {
  test(`decode graph = op by op, bit for bit (${format})`, { skip: !hasNative }, () => {
    setBackend("native");
    const m = model(format);
    const ops = run(m, false);
    const fused = run(m, true);
    assertSame(ops, fused, format);
    // and the graph did run: captured at the first decode step and after each growth of the cache (4 →
    // 8 → 16 tokens), replayed natively at the other steps
    const counts = countGraphs(() => run(m, true));
    assert.deepEqual(counts, { compiled: 3, runs: 9 });
    m.dispose();
  });
}

test("decode graph = op by op on the AVX2 and portable kernels too", { skip: !hasNative }, () => {
  // The ISA is chosen when the addon loads: each runs in a child process.
  const url = (p: string) => pathToFileURL(repoPath("dist", p)).href;
  const script = `
    import { setBackend } from ${JSON.stringify(url("src/backends/index.js"))};
    import { Llama, KVCache, preset, quantizeWeights, initWeights } from ${JSON.stringify(url("src/model/index.js"))};
    import { noGrad, scope } from ${JSON.stringify(url("src/tensor/index.js"))};
    import { reloadKnobs } from ${JSON.stringify(url("src/core/knobs.js"))};
    const b = setBackend("native");
    const cfg = { ...preset("tiny"), maxPositionEmbeddings: 64 };
    const bf = new Llama(cfg, initWeights(cfg, { seed: 11, dtype: "bf16" }));
    const q4 = new Llama(cfg, quantizeWeights(new Llama(cfg, initWeights(cfg, { seed: 11, dtype: "f32" })), "q4_0"));
    const run = (m, fused) => {
      process.env.HERD_FUSED_DECODE = fused ? "1" : "0";
      reloadKnobs();
      const cache = new KVCache(cfg, 1, 4);
      const out = [];
      for (const ids of [[0, 5, 9], [17], [148], [29], [300], [2]])
        out.push(...noGrad(() => scope(() => Array.from(m.forward(Int32Array.from(ids), { cache, logits: "last" }).data))));
      return out;
    };
    const differ = (m) => { const a = run(m, false), f = run(m, true); return a.filter((x, i) => !Object.is(x, f[i])).length; };
    console.log(JSON.stringify({ isa: b.isa, bf16: differ(bf), q4_0: differ(q4) }));`;
  for (const isa of ["generic", "avx2"]) {
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      env: { ...process.env, HERD_NATIVE_ISA: isa },
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { isa: string; bf16: number; q4_0: number };
    assert.deepEqual(out, { isa: out.isa, bf16: 0, q4_0: 0 }, `${isa}: logits that differ`);
    if (isa === "generic") assert.equal(out.isa, "generic");
  }
});

test("decode graph = op by op with long-row (packed) down projections", { skip: !hasNative }, () => {
  // intermediate 8192: on AVX-512 the native backend reads w2 through its packed copy in both paths.
  setBackend("native");
  const long = { ...cfg, intermediateSize: 8192, numHiddenLayers: 2 };
  const m = new Llama(long, initWeights(long, { seed: 5, dtype: "bf16" }));
  assertSame(run(m, false, false, long), run(m, true, false, long), "intermediate 8192");
  m.dispose();
});

test("decode steps with document ids, or on f32 weights, take the op path and agree", {
  skip: !hasNative,
}, () => {
  setBackend("native");
  const m = model("bf16");
  assertSame(run(m, false, true), run(m, true, true), "with docIds");
  assert.deepEqual(
    countGraphs(() => run(m, true, true)),
    { compiled: 0, runs: 0 },
  );
  m.dispose();
  // f32 weights: the step's f32 matmul is not a kernel the addon replays, so the graph is not compiled.
  const f32 = new Llama(cfg, initWeights(cfg, { seed: 11, dtype: "f32" }));
  assertSame(run(f32, false), run(f32, true), "f32");
  f32.dispose();
});

/** How many graphs the native backend compiled, and how many native runs, while fn ran. */
function countGraphs(fn: () => void): { compiled: number; runs: number } {
  const backend = getBackend();
  const real = backend.compileGraph!;
  const counts = { compiled: 0, runs: 0 };
  backend.compileGraph = (calls) => {
    const g = real.call(backend, calls);
    if (!g) return g;
    counts.compiled++;
    return {
      run: (p) => {
        counts.runs++;
        g.run(p);
      },
      dispose: () => g.dispose(),
    };
  };
  try {
    fn();
  } finally {
    backend.compileGraph = real;
  }
  return counts;
}

test("a native graph whose buffers do not fit its sizes is refused with a message", {
  skip: !hasNative,
}, () => {
  setBackend("native");
  const backend = getBackend();
  const src = new Float32Array(8);
  const dst = new Float32Array(8);
  const copy = (n: number) => ({
    op: "copy",
    args: [src, 0, dst, 0, n],
    dyn: [{ arg: 3, param: 0, mul: 4, add: 0 }],
  });
  const g = backend.compileGraph!([copy(4)])!;
  src.fill(3);
  g.run([1]); // dst[4..8) = src[0..4)
  assert.deepEqual(Array.from(dst), [0, 0, 0, 0, 3, 3, 3, 3]);
  assert.throws(() => g.run([2]), /graph node 0: buffer too small/);
  assert.throws(() => g.run([]), /missing a parameter/);
  g.dispose();
  assert.throws(() => g.run([0]), /after dispose/);
  assert.throws(() => backend.compileGraph!([{ ...copy(9), dyn: [] }])!.run([]), /too small/);
  // A kernel the addon does not replay: not compiled.
  assert.equal(backend.compileGraph!([{ op: "softmax", args: [src, dst, 2, 4], dyn: [] }]), null);
});
