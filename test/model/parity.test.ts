// Parity with an independent PyTorch implementation (test/fixtures/reference/README.md): for both tiny
// reference models, logits from HF f32 files, from Meta files and from bf16 files, document-masked logits
// (positions global and restarted), greedy tokens with the KV cache, KV-cache incremental logits against
// a full forward, and the loss with every parameter's gradient.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { generate } from "../../src/generate/index.js";
import { readSafetensors } from "../../src/model/checkpoint/index.js";
import { fromHFConfig, KVCache, Llama, loadModel } from "../../src/model/index.js";
import { backward, noGrad, scope, type Tensor } from "../../src/tensor/index.js";
import { closeness, repoPath } from "../helpers.js";

interface Expected {
  tokens: number[][];
  doc_ids: number[][];
  positions_reset: number[][];
  loss_targets: number[][];
  loss: number;
  greedy_prompt: number[];
  greedy_new_tokens: number[];
}

/** Every element within rtol of the reference, with an absolute floor of rtol·(largest |reference|). */
function assertClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol: number): void {
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  const c = closeness(got, want, rtol, rtol * scale);
  assert.ok(c <= 1, `${name}: worst error is ${c.toFixed(3)}× the tolerance (rtol ${rtol})`);
}

const flat = (rows: number[][]) => Int32Array.from(rows.flat());

function logitsOf(model: Llama, ids: Int32Array, opts: Parameters<Llama["forward"]>[1]): Float32Array {
  return noGrad(() => scope(() => model.forward(ids, opts).toArray()));
}

for (const name of ["tiny-scaled", "tiny-tied"]) {
  describe(`reference model ${name}`, async () => {
    const dir = repoPath("test", "fixtures", "reference", name);
    const exp = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8")) as Expected;
    const ref = await readSafetensors(join(dir, "expected.safetensors"));
    const want = (key: string): Float32Array => {
      const t = ref.get(key);
      assert.ok(t, `expected.safetensors has ${key}`);
      return t.toArray();
    };
    const ids = flat(exp.tokens);
    const B = exp.tokens.length;
    const hf = fromHFConfig(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")));
    const metaOpts = {
      meta: { ropeScaling: hf.ropeScaling, maxPositionEmbeddings: hf.maxPositionEmbeddings },
    };

    test("logits from the HF f32 checkpoint", async () => {
      const m = await loadModel(dir);
      assertClose("logits", logitsOf(m, ids, { batch: B }), want("logits"), 1e-4);
      m.dispose();
    });

    test("logits from the HF bf16 checkpoint, widened to f32 and kept in bf16", async () => {
      const file = join(dir, "model-bf16.safetensors");
      const tensorsF32 = await readSafetensors(file);
      const tensorsBf16 = await readSafetensors(file, { dtype: "keep" });
      for (const [label, tensors] of [
        ["f32", tensorsF32],
        ["bf16", tensorsBf16],
      ] as const) {
        const m = new Llama(hf, tensors, file);
        if (label === "bf16") assert.equal(m.dtype, "bf16");
        assertClose(`logits (${label})`, logitsOf(m, ids, { batch: B }), want("logits_bf16_weights"), 1e-4);
        m.dispose();
      }
    });

    test("logits from the Meta checkpoint (params.json + consolidated.00.pth)", async () => {
      for (const dtype of ["f32", "keep"] as const) {
        const m = await loadModel(join(dir, "meta"), { dtype, ...metaOpts });
        assert.equal(
          m.config.tieWordEmbeddings,
          hf.tieWordEmbeddings,
          "tied output found from equal tensors",
        );
        assertClose(
          `logits (${dtype})`,
          logitsOf(m, ids, { batch: B }),
          want("logits_meta_bf16_checkpoint"),
          1e-4,
        );
        m.dispose();
      }
    });

    test("document-masked logits, positions global and restarted per document", async () => {
      const m = await loadModel(dir);
      const docIds = flat(exp.doc_ids);
      assertClose("doc mask", logitsOf(m, ids, { batch: B, docIds }), want("logits_doc_mask"), 1e-4);
      const reset = logitsOf(m, ids, { batch: B, docIds, resetPositions: true });
      assertClose("doc mask, positions reset", reset, want("logits_doc_mask_positions_reset"), 1e-4);
      const explicit = logitsOf(m, ids, { batch: B, docIds, positions: flat(exp.positions_reset) });
      assertClose("explicit positions", explicit, want("logits_doc_mask_positions_reset"), 1e-4);
      m.dispose();
    });

    test("KV cache: incremental logits equal a full forward (batch 2, uneven chunks)", async () => {
      for (const dtype of ["f32", "keep"] as const) {
        const m = await loadModel(dir, { dtype });
        const V = m.config.vocabSize;
        const T = exp.tokens[0]!.length;
        const full = logitsOf(m, ids, { batch: B });
        const cache = new KVCache(m.config, B, 4); // small, so it has to grow
        const got = new Float32Array(full.length);
        for (const [t0, t1] of [
          [0, 7],
          [7, 8],
          [8, 11],
          [11, T],
        ] as const) {
          const chunk = Int32Array.from(exp.tokens.flatMap((row) => row.slice(t0, t1)));
          const part = logitsOf(m, chunk, { batch: B, cache });
          const n = t1 - t0;
          for (let b = 0; b < B; b++) got.set(part.subarray(b * n * V, (b + 1) * n * V), (b * T + t0) * V);
        }
        assert.equal(cache.length, T);
        cache.dispose();
        assertClose(`incremental (${dtype})`, got, full, 1e-5);
        // With document ids the cache keeps them: chunked decoding gives the document-masked logits.
        if (dtype === "f32") {
          const docCache = new KVCache(m.config, B, 4);
          const masked = new Float32Array(full.length);
          for (const [t0, t1] of [
            [0, 6],
            [6, 13],
            [13, T],
          ] as const) {
            const pick = (rows: number[][]) => Int32Array.from(rows.flatMap((row) => row.slice(t0, t1)));
            const part = logitsOf(m, pick(exp.tokens), {
              batch: B,
              cache: docCache,
              docIds: pick(exp.doc_ids),
            });
            const n = t1 - t0;
            for (let b = 0; b < B; b++)
              masked.set(part.subarray(b * n * V, (b + 1) * n * V), (b * T + t0) * V);
          }
          docCache.dispose();
          assertClose("incremental with document ids", masked, want("logits_doc_mask"), 1e-4);
        }
        m.dispose();
      }
    });

    test("greedy tokens with the KV cache equal greedy_new_tokens", async () => {
      const m = await loadModel(dir);
      const r = generate(m, exp.greedy_prompt, {
        maxNewTokens: exp.greedy_new_tokens.length,
        stopIds: [],
        temperature: 0,
      });
      assert.deepEqual(r.tokens, exp.greedy_new_tokens);
      assert.equal(r.finishReason, "length");
      m.dispose();
    });

    test("loss and the gradient of every parameter", async () => {
      const m = (await loadModel(dir)).trainable();
      const targets = flat(exp.loss_targets);
      const grads = scope(() => {
        const loss = m.loss(ids, targets, { batch: B });
        assert.ok(Math.abs(loss.item() - exp.loss) <= 1e-5 * exp.loss, `loss ${loss.item()} vs ${exp.loss}`);
        backward(loss);
        return new Map([...m.weights].map(([n, t]) => [n, (t.grad as Tensor).toArray()]));
      });
      let checked = 0;
      for (const key of ref.keys()) {
        if (!key.startsWith("grad.")) continue;
        const pname = key.slice(5);
        const g = grads.get(pname);
        assert.ok(g, `model has a gradient for ${pname}`);
        assertClose(key, g, want(key), 1e-3);
        checked++;
      }
      assert.equal(checked, m.weights.size, "a reference gradient for every parameter");
      m.dispose();
    });
  });
}
