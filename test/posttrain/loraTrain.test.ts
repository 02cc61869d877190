// A short SFT-like run with LoRA: AdamW on the adapter's A and B only, cross-entropy on a fixed batch with
// the prompt half masked, on bf16 and Q8_0 bases (with activation recomputation on the bf16 one). The
// loss falls, every base weight stays bit-identical, and disabled() still gives the base's loss.
import assert from "node:assert/strict";
import { test } from "node:test";
import { applyLora } from "../../src/posttrain/lora.js";
import { AdamW, backward, crossEntropy, QuantTensor, scope } from "../../src/tensor/index.js";
import { type BaseDtype, ids, lossValue, targets, tinyModel } from "./loraHelpers.js";

/** Every base weight's bytes, to compare after training. */
function snapshot(model: ReturnType<typeof tinyModel>): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [n, t] of model.weights) {
    const v = t.dtype === "f32" ? t.data : t.halfBits;
    out.set(n, new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)));
  }
  for (const [n, q] of model.quantized) out.set(n, Uint8Array.from(q.blocks));
  return out;
}

// Loss only on the second half of each row (the "assistant" tokens).
const mask = Float32Array.from({ length: ids.length }, (_, i) => (i % 7 >= 3 ? 1 : 0));

for (const [dtype, recompute] of [
  ["bf16", true],
  ["q8_0", false],
] as [BaseDtype, boolean][])
  test(`a few LoRA steps lower the loss and leave the ${dtype} base bit-identical${recompute ? " (recomputed blocks)" : ""}`, () => {
    const model = tinyModel(dtype, 5, 0.15);
    model.recompute = recompute;
    const before = snapshot(model);
    const lora = applyLora(model, { rank: 4, alpha: 8, dropout: 0.05, seed: 2 });
    const opt = new AdamW(lora.parameters(), { lr: 1e-2, weightDecay: 0 });
    const step = () =>
      scope(() => {
        const logits = model.forward(ids, { batch: 2 });
        const loss = crossEntropy(logits, targets, { mask });
        backward(loss);
        opt.update();
        opt.zeroGrad();
        return loss.item();
      });
    const losses = Array.from({ length: 30 }, step);
    assert.ok(losses.every(Number.isFinite));
    assert.ok(losses[29]! < losses[0]! * 0.5, `loss ${losses[0]} → ${losses[29]}`);
    const after = snapshot(model);
    for (const [name, bytes] of before) assert.deepEqual(after.get(name), bytes, `${name} changed`);
    for (const w of model.weights.values()) assert.equal(w.grad, null, `${w.name} got a gradient`);
    assert.ok([...model.quantized.values()].every((q) => q instanceof QuantTensor));
    // The base alone is where it started; the adapted model has learnt.
    const fresh = lossValue(tinyModel(dtype, 5, 0.15), mask);
    assert.equal(
      lora.disabled(() => lossValue(model, mask)),
      fresh,
    );
    assert.ok(lossValue(model, mask) < fresh);
    opt.dispose();
  });
