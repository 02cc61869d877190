// Graph capture and replay (src/tensor/graph.ts) on the js reference backend: a step of KV-cache writes
// and cached attention, captured once at one cache length, replays at later lengths to the same values
// as running the ops again; what a capture cannot record is refused with a message; a graph's buffers
// are freed by dispose.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { getBackend, setBackend } from "../../src/backends/index.js";
import {
  cachedAttention,
  cacheWrite,
  capture,
  fromArray,
  noGrad,
  rmsNorm,
  sum,
  zeros,
} from "../../src/tensor/index.js";
import { KVCache } from "../../src/tensor/kvcache.js";
import { randArray } from "../helpers.js";

const initial = getBackend();
after(() => setBackend(initial));

const H = 4;
const KV = 2;
const HD = 8;

/** One decode-like step: write k and v after the cached tokens, attend q over them, normalise. */
function step(cache: KVCache, q: Float32Array, k: Float32Array, v: Float32Array, w: Float32Array) {
  const qt = zeros([1, 1, H, HD]);
  const kt = zeros([1, 1, KV, HD]);
  const vt = zeros([1, 1, KV, HD]);
  qt.data.set(q);
  kt.data.set(k);
  vt.data.set(v);
  cacheWrite(cache, 0, kt, vt, 1);
  const a = cachedAttention(cache, 0, qt);
  return { inputs: [qt.data, kt.data, vt.data], out: rmsNorm(a, fromArray(w, [HD]), 1e-5) };
}

test("a captured step replays at later cache lengths to the values of the ops run again", () => {
  setBackend("js");
  noGrad(() => {
    const w = randArray(HD, 1);
    const direct = new KVCache(1, KV * HD, 1, 16);
    const replayed = new KVCache(1, KV * HD, 1, 16);
    const draw = (t: number) => [
      randArray(H * HD, 10 + t),
      randArray(KV * HD, 20 + t),
      randArray(KV * HD, 30 + t),
    ];
    // Two steps op by op on both caches, then capture the third on one of them.
    for (let t = 0; t < 2; t++)
      for (const c of [direct, replayed]) {
        const [q, k, v] = draw(t);
        step(c, q!, k!, v!, w);
        c.advance(1);
      }
    const [q2, k2, v2] = draw(2);
    const { graph, result } = capture(() => step(replayed, q2!, k2!, v2!, w));
    const want2 = step(direct, q2!, k2!, v2!, w).out.data;
    assert.deepEqual(result.out.data, want2, "the capture ran the step for real");
    direct.advance(1);
    replayed.advance(1);
    assert.ok(graph.calls.some((c) => c.op === "attention" && c.dyn.some((d) => d.field === "seqK")));
    for (let t = 3; t < 9; t++) {
      const [q, k, v] = draw(t);
      for (const [i, buf] of result.inputs.entries()) buf.set([q!, k!, v!][i]!);
      graph.run([replayed.length]);
      const want = step(direct, q!, k!, v!, w).out.data;
      assert.deepEqual(Array.from(result.out.data), Array.from(want), `step ${t}`);
      direct.advance(1);
      replayed.advance(1);
    }
    assert.equal(graph.native, false, "the js backend replays call by call");
    const before = getBackend().liveBytes();
    graph.dispose();
    assert.ok(getBackend().liveBytes() < before, "dispose frees the graph's buffers");
    assert.throws(() => graph.run([0]), /after dispose/);
    direct.dispose();
    replayed.dispose();
  });
});

test("what a capture cannot record is refused", () => {
  const initialJs = setBackend("js");
  const outside = zeros([4]);
  assert.throws(() => capture(() => sum(outside)), /kernel 'sum' returns a value/);
  assert.throws(() => capture(() => capture(() => 0)), /already capturing/);
  assert.equal(getBackend(), initialJs, "the active backend is restored after a failed capture");
  outside.dispose();
});
