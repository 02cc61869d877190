// Weight-only quantisation of a model (`herd quantize`): every matrix (embedding, attention and FFN
// projections, lm_head) becomes Q8_0 or Q4_0 blocks by ggml's reference rules (src/tensor/quant.ts);
// RMSNorm weights stay f32. As llama.cpp's Q8_0/Q4_0 files do, the embedding is quantised too: a lookup
// dequantises one row, and a tied output head reads the same blocks (the largest matrix of a Llama 3.2
// model, 262M of its 1.24B weights, so quantising it matters most for decode speed).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type QuantFormat, QuantTensor, quantize } from "../tensor/quant.js";
import type { Tensor } from "../tensor/tensor.js";
import { readIndex } from "./checkpoint/hf.js";
import { HF_INDEX, HF_SINGLE, readSafetensorsHeader } from "./checkpoint/index.js";
import { quantFormatOf, writeQuantCheckpoint } from "./checkpoint/quant.js";
import { toHFConfig } from "./config.js";
import type { Llama } from "./llama.js";
import { loadModel } from "./load.js";
import { weightShapes } from "./weights.js";

/** The model's weights by HF name with every matrix quantised (the model itself is left as it is). */
export function quantizeWeights(
  model: Llama,
  format: QuantFormat,
  onTensor?: (name: string, index: number, count: number) => void,
): Map<string, Tensor | QuantTensor> {
  const out = new Map<string, Tensor | QuantTensor>();
  const names = [...weightShapes(model.config).keys()];
  names.forEach((name, i) => {
    const t = model.weights.get(name);
    if (!t) throw new Error(`quantize: weight '${name}' is already quantised`);
    out.set(name, t.rank === 2 ? quantize(t, format) : t);
    onTensor?.(name, i, names.length);
  });
  return out;
}

export interface QuantizeReport {
  format: QuantFormat;
  /** Bytes of the weights before (as stored in the source) and after. */
  bytesIn: number;
  bytesOut: number;
  tensors: number;
}

/**
 * Quantise the bf16 or f32 checkpoint in `inDir` into a quantised directory `outDir` (atomic). Refuses a
 * source that is already quantised or holds f16 matrices, naming the file.
 */
export async function quantizeCheckpoint(
  inDir: string,
  outDir: string,
  format: QuantFormat,
  onTensor?: (name: string, index: number, count: number) => void,
): Promise<QuantizeReport> {
  const already = quantFormatOf(inDir);
  if (already)
    throw new Error(
      `${inDir}/model.safetensors: already quantised (${already}); quantize a bf16 or f32 checkpoint`,
    );
  await checkSourceDtypes(inDir);
  const model = await loadModel(inDir, { dtype: "keep" });
  try {
    let bytesIn = 0;
    for (const t of model.weights.values()) bytesIn += t.size * (t.dtype === "f32" ? 4 : 2);
    const tensors = quantizeWeights(model, format, onTensor);
    let bytesOut = 0;
    for (const t of tensors.values()) bytesOut += t instanceof QuantTensor ? t.blocks.length : t.size * 4;
    const srcDtype = model.dtype === "f32" ? "f32" : "bf16";
    writeQuantCheckpoint(outDir, toHFConfig(model.config, srcDtype), tensors, format);
    for (const t of tensors.values()) if (t instanceof QuantTensor) t.dispose();
    return { format, bytesIn, bytesOut, tensors: tensors.size };
  } finally {
    model.dispose();
  }
}

/** Every tensor of an HF directory's safetensors file(s) must be F32 or BF16 (errors name the file). */
async function checkSourceDtypes(dir: string): Promise<void> {
  const files: string[] = [];
  if (existsSync(join(dir, HF_SINGLE))) files.push(join(dir, HF_SINGLE));
  else if (existsSync(join(dir, HF_INDEX)))
    for (const f of new Set(readIndex(join(dir, HF_INDEX)).values())) files.push(join(dir, f));
  for (const path of files) {
    const header = await readSafetensorsHeader(path);
    for (const e of header.entries.values())
      if (e.dtype !== "F32" && e.dtype !== "BF16")
        throw new Error(
          `${path}: tensor '${e.name}' is ${e.dtype}; herd quantize takes bf16 or f32 checkpoints`,
        );
  }
}
