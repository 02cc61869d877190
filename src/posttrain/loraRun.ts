// What a LoRA run of `herd sft` / `herd dpo` needs around the Lora class (lora.ts): the frozen base
// loaded in the dtype asked — f32, bf16 (as stored, or rounded at load), or Q8_0 (quantised at load by
// ggml's rules, one matrix at a time, so the peak is the stored model plus one matrix) — the loop's extra
// state (the adapter, in the PEFT layout, inside each checkpoint folder; with the optimiser state, step
// and data position that is the whole checkpoint: no base weights), the run.json settings a resume is
// checked against (the LoRA options and the base's config, dtype and content hash), DPO's reference
// (the base with the adapter switched off, as torchtune does) and the run's final adapter.
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { Llama } from "../model/llama.js";
import { loadModel, readConfig } from "../model/load.js";
import { weightShapes } from "../model/weights.js";
import { QUANT_BLOCK, type QuantTensor, quantize } from "../tensor/quant.js";
import { shapeStr, type Tensor } from "../tensor/tensor.js";
import type { PreferenceExample } from "./data.js";
import { dataHash, type PairLogps, pairLogps } from "./dpo.js";
import type { LoopOptions } from "./loop.js";
import type { Lora } from "./lora.js";
import { readAdapterInto, saveAdapter } from "./peft.js";

export const BASE_DTYPES = ["f32", "bf16", "q8_0"] as const;
export type BaseDtype = (typeof BASE_DTYPES)[number];

/**
 * The frozen base of a LoRA run from a checkpoint directory (or .gguf), its matrices in `dtype`. A
 * quantised checkpoint (`herd quantize`) is taken as it is for its own format only. Q8_0 needs every
 * matrix's rows in whole blocks of 32 values (ggml's Q8_0, and what llama.cpp can read back): another
 * shape is refused, naming the tensor, before anything is read.
 */
export async function loadBase(dir: string, dtype: BaseDtype): Promise<Llama> {
  if (dtype === "f32") return loadModel(dir);
  if (dtype === "q8_0")
    for (const [name, shape] of weightShapes(readConfig(dir)))
      if (shape.length === 2 && shape[1]! % QUANT_BLOCK !== 0)
        throw new Error(
          `${dir}: --base-dtype q8_0 needs every matrix's rows in whole blocks of ${QUANT_BLOCK} values (ggml's Q8_0); ` +
            `'${name}' is ${shapeStr(shape)} (rows of ${shape[1]}). Use --base-dtype bf16`,
        );
  const m = await loadModel(dir, { dtype: "keep" });
  const [q] = m.quantized.values();
  if (q) {
    if (q.format === dtype) return m;
    m.dispose();
    throw new Error(
      `${dir}: a ${q.format} checkpoint cannot be a ${dtype} base; pass its bf16/f32 source, or --base-dtype ${q.format}`,
    );
  }
  // One matrix at a time: convert, then free the source, so the peak is the model plus one matrix.
  const out = new Map<string, Tensor | QuantTensor>();
  for (const [name, t] of m.weights) {
    if (t.rank !== 2 || (dtype === "bf16" && t.dtype === "bf16")) {
      out.set(name, t);
      continue;
    }
    out.set(name, dtype === "bf16" ? t.toDtype("bf16") : quantize(t, "q8_0"));
    t.dispose();
  }
  return new Llama(m.config, out, dir);
}

/** The LoRA learning rate a run resolves to: --lr, else 10× full fine-tuning's default (1e-4; 1e-3 for small models). */
export function resolveLoraLR(lr: number | null, hidden: number): number {
  return lr ?? (hidden >= 2048 ? 1e-4 : 1e-3);
}

/**
 * The loop options of a LoRA run: only the adapter trains; each checkpoint folder holds it in the PEFT
 * layout; run.json records the LoRA options and the base (config, dtype, and `hash`: dpo.ts's
 * checkpointHash of its files), so a
 * resume on another base or with other options is refused naming the field.
 */
export function loraLoop(lora: Lora, baseDir: string, dtype: BaseDtype, hash: string): LoopOptions {
  return {
    params: [],
    extra: {
      params: lora.parameters(),
      save: (folder) => saveAdapter(lora, folder, { baseModel: resolve(baseDir) }),
      load: (folder) => readAdapterInto(lora, folder),
      beginStep: (step) => lora.beginStep(step),
    },
    settings: {
      lora: {
        r: lora.rank,
        alpha: lora.alpha,
        dropout: lora.dropout,
        rslora: lora.useRslora,
        seed: lora.seed,
        modules: lora.modules.map((m) => m.module),
      },
      base: { dtype, config: lora.model.config, sha256: hash },
    },
  };
}

/**
 * DPO's reference log-probabilities for a LoRA policy: the base alone (every adapter switched off), so
 * no second model is held. Equal to pairLogps of the base without the adapter.
 */
export function loraReference(
  lora: Lora,
  pairs: readonly PreferenceExample[],
  seqLen: number,
  micro: number,
): PairLogps[] {
  return lora.disabled(() => pairLogps(lora.model, pairs, seqLen, micro));
}

/** The key of a LoRA run's reference cache: the data, the base's content and its dtype. */
export function loraReferenceKey(
  pairs: readonly PreferenceExample[],
  seqLen: number,
  hash: string,
  dtype: BaseDtype,
): string {
  return createHash("sha256")
    .update(`${dataHash(pairs, seqLen)} ${hash} lora-base ${dtype}`)
    .digest("hex");
}

/** Write the trained adapter to runDir/final/ (PEFT layout, base_model_name_or_path the base's path). */
export async function writeFinalAdapter(runDir: string, lora: Lora, baseDir: string): Promise<string> {
  const dir = join(runDir, "final");
  await saveAdapter(lora, dir, { baseModel: resolve(baseDir) });
  return dir;
}
