// forwardRows with per-row LoRA adapters (what `herd serve --lora` batches): a step whose rows run under
// adapter X, adapter Y and the base alone gives each row, to float tolerance, the logits of an
// independent reference — that row alone through the plain forward of a model whose weights have the
// adapter merged in (W + scale·B·A, computed here by plain loops) — over a prefill step and a decode step,
// on an f32 and on a bf16 base; a step where every row uses one adapter too; a malformed update is an
// error naming the matrix.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { getBackend, setBackend } from "../../src/backends/index.js";
import { Rng } from "../../src/core/rng.js";
import {
  type BatchRow,
  initWeights,
  KVCache,
  Llama,
  type LlamaConfig,
  type LowRankDelta,
  layerName,
  type RowAdapter,
} from "../../src/model/index.js";
import { noGrad } from "../../src/tensor/tape.js";
import { scope, type Tensor, zeros } from "../../src/tensor/tensor.js";

let previous = "";
before(() => {
  previous = getBackend().name;
  setBackend("js");
});
after(() => setBackend(previous));

const config: LlamaConfig = {
  hiddenSize: 32,
  intermediateSize: 48,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  headDim: 8,
  vocabSize: 40,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  ropeScaling: null,
  tieWordEmbeddings: false,
  maxPositionEmbeddings: 64,
  bosTokenId: 0,
  eosTokenIds: [1],
};

const PARTS = [
  "self_attn.q_proj",
  "self_attn.k_proj",
  "self_attn.v_proj",
  "self_attn.o_proj",
  "mlp.gate_proj",
  "mlp.up_proj",
  "mlp.down_proj",
];

/** A random adapter over `parts` of every layer (B non-zero, so it changes the output). */
function randomAdapter(base: Map<string, Tensor>, parts: string[], rank: number, seed: number): RowAdapter {
  const rng = new Rng(seed);
  const fill = (t: Tensor, s: number) => {
    for (let i = 0; i < t.size; i++) t.data[i] = (rng.next() * 2 - 1) * s;
    return t.keep();
  };
  const out = new Map<string, LowRankDelta>();
  for (let l = 0; l < config.numHiddenLayers; l++)
    for (const p of parts) {
      const [o, i] = base.get(layerName(l, p))!.shape as [number, number];
      out.set(layerName(l, p), {
        A: fill(zeros([rank, i]), 0.3),
        B: fill(zeros([o, rank]), 0.3),
        scale: 2 / rank,
      });
    }
  return out;
}

/** The base's weights as f32 with W += scale·B·A for each update of `adapter` (plain loops). */
function merged(base: Map<string, Tensor>, adapter: RowAdapter | null): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, t] of base) {
    const w = t.dtype === "f32" ? zeros(t.shape) : t.toF32();
    if (t.dtype === "f32") w.data.set(t.data);
    const d = adapter?.get(name);
    if (d) {
      const [o, i] = t.shape as [number, number];
      const r = d.A.shape[0]!;
      for (let j = 0; j < o; j++)
        for (let k = 0; k < i; k++) {
          let s = 0;
          for (let q = 0; q < r; q++) s += d.B.data[j * r + q]! * d.A.data[q * i + k]!;
          w.data[j * i + k] = w.data[j * i + k]! + d.scale * s;
        }
    }
    out.set(name, w);
  }
  return out;
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return m / Math.max(scale, 1e-6);
}

interface RowSpec {
  adapter: "X" | "Y" | null;
  prompt: number[];
  allLogits?: boolean;
  next: number;
}

/** Two batched steps (prefill, then one decode token each) against each row alone on its merged model. */
function checkMixed(dtype: "f32" | "bf16", specs: RowSpec[]): void {
  const f32 = initWeights(config, { seed: 9 });
  const baseTensors = new Map<string, Tensor>();
  for (const [n, t] of f32) baseTensors.set(n, dtype === "bf16" && t.rank === 2 ? t.toDtype("bf16") : t);
  const adapters = {
    X: randomAdapter(f32, ["self_attn.q_proj", "self_attn.v_proj"], 4, 1),
    Y: randomAdapter(f32, PARTS, 2, 2),
  };
  const model = new Llama(config, baseTensors);
  const refs = new Map(
    (["X", "Y", null] as const).map((a) => [
      a,
      new Llama(config, merged(baseTensors, a ? adapters[a] : null)),
    ]),
  );
  noGrad(() => {
    const caches = specs.map(() => new KVCache(config, 1, 32));
    const rows: BatchRow[] = specs.map((s, i) => ({
      cache: caches[i]!,
      tokens: s.prompt.length,
      allLogits: s.allLogits === true,
      adapter: s.adapter ? adapters[s.adapter] : null,
    }));
    const V = config.vocabSize;
    const prefill = scope(() =>
      model.forwardRows(Int32Array.from(specs.flatMap((s) => s.prompt)), rows).keep(),
    );
    const decodeRows = rows.map((r) => ({ ...r, tokens: 1, allLogits: false }));
    const decode = scope(() =>
      model.forwardRows(Int32Array.from(specs.map((s) => s.next)), decodeRows).keep(),
    );
    let at = 0;
    for (const [i, s] of specs.entries()) {
      const ref = refs.get(s.adapter)!;
      const cache = new KVCache(config, 1, 32);
      const n = s.allLogits ? s.prompt.length : 1;
      scope(() => {
        const want = ref.forward(Int32Array.from(s.prompt), {
          cache,
          logits: s.allLogits ? "all" : "last",
        }).data;
        const got = prefill.data.subarray(at * V, (at + n) * V);
        const d = maxRelDiff(got, want);
        assert.ok(d < 2e-5, `row ${i} (${s.adapter ?? "base"}, ${dtype}) prefill differs by ${d}`);
        const want2 = ref.forward(Int32Array.of(s.next), { cache }).data;
        const d2 = maxRelDiff(decode.data.subarray(i * V, (i + 1) * V), want2);
        assert.ok(d2 < 2e-5, `row ${i} (${s.adapter ?? "base"}, ${dtype}) decode differs by ${d2}`);
      });
      at += n;
      cache.dispose();
    }
    // The adapters change the output (the comparison above is not of equal things).
    const base = refs.get(null)!;
    const x = specs.findIndex((s) => s.adapter !== null);
    if (x >= 0) {
      const s = specs[x]!;
      const plain = scope(() => base.forward(Int32Array.from(s.prompt), { logits: "last" }).data.slice());
      const rowStart = specs.slice(0, x).reduce((n, p) => n + (p.allLogits ? p.prompt.length : 1), 0);
      const n = s.allLogits ? s.prompt.length : 1;
      const got = prefill.data.subarray((rowStart + n - 1) * V, (rowStart + n) * V);
      assert.ok(maxRelDiff(got, plain) > 1e-2, "an adapter changes the logits");
    }
    prefill.dispose();
    decode.dispose();
    for (const c of caches) c.dispose();
  });
  model.dispose();
  for (const r of refs.values()) r.dispose();
  for (const a of Object.values(adapters))
    for (const d of a.values()) {
      d.A.dispose();
      d.B.dispose();
    }
}

const mixed: RowSpec[] = [
  { adapter: "X", prompt: [2, 5, 7, 11, 13], next: 3 },
  { adapter: null, prompt: [4, 6, 8], next: 9 },
  { adapter: "Y", prompt: [10, 12, 14, 16], next: 17 },
  { adapter: "X", prompt: [19, 21], allLogits: true, next: 23 },
  { adapter: null, prompt: [25], next: 27 },
];

test("forwardRows with mixed adapters equals each row alone on its merged model (f32 base)", () => {
  checkMixed("f32", mixed);
});

test("forwardRows with mixed adapters equals each row alone on its merged model (bf16 base)", () => {
  checkMixed("bf16", mixed);
});

test("forwardRows where every row runs one adapter equals each row alone on its merged model", () => {
  checkMixed("f32", [
    { adapter: "Y", prompt: [3, 4, 5], next: 6 },
    { adapter: "Y", prompt: [7, 8], allLogits: true, next: 9 },
  ]);
});

test("forwardRows refuses an update whose shape is not its matrix's, naming the matrix", () => {
  const model = new Llama(config, initWeights(config, { seed: 9 }));
  const name = layerName(1, "mlp.down_proj");
  const bad: RowAdapter = new Map([[name, { A: zeros([2, 32]).keep(), B: zeros([32, 2]).keep(), scale: 1 }]]);
  noGrad(() => {
    const cache = new KVCache(config, 1, 8);
    assert.throws(
      () => scope(() => model.forwardRows(Int32Array.of(2, 3), [{ cache, tokens: 2, adapter: bad }])),
      new RegExp(`'${name.replace(/\./g, "\\.")}' has A \\[2,32\\]`),
    );
    cache.dispose();
  });
  model.dispose();
});
