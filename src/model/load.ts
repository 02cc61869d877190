// Models in and out of checkpoint directories. A directory with config.json is Hugging Face's format;
// one with params.json is Meta's (the checkpoint module renames Meta's tensors to HF names and permutes
// Q/K to the split-halves RoPE layout); a `.gguf` file is llama.cpp's (checkpoint/ggufLlama.ts, read
// the same way). What herd writes is an HF `LlamaForCausalLM` checkpoint (GGUF: `herd export`).
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { DType } from "../tensor/dtype.js";
import type { QuantTensor } from "../tensor/quant.js";
import type { Tensor } from "../tensor/tensor.js";
import { GGUFFile } from "./checkpoint/gguf.js";
import { ggufConfig, readGGUFModel } from "./checkpoint/ggufLlama.js";
import { readHFCheckpoint, readMetaCheckpoint, writeHFCheckpoint } from "./checkpoint/index.js";
import { readRegularFile } from "./checkpoint/io.js";
import { quantFormatOf, readQuantTensors } from "./checkpoint/quant.js";
import {
  fromHFConfig,
  fromMetaParams,
  type LlamaConfig,
  type MetaParamsOptions,
  toHFConfig,
} from "./config.js";
import { Llama } from "./llama.js";
import { EMBED, LM_HEAD, weightShapes } from "./weights.js";

export interface LoadOptions {
  /** "f32" (default): every weight widened to f32 (trainable); "keep": bf16 matrices stay bf16 (inference). */
  dtype?: "f32" | "keep";
  /** Meta directories only: settings params.json does not carry (see fromMetaParams). */
  meta?: MetaParamsOptions;
}

export type CheckpointFormat = "hf" | "meta" | "gguf";

/** A path naming a GGUF file (llama.cpp's format) rather than a checkpoint directory. */
export function isGGUFPath(path: string): boolean {
  return path.toLowerCase().endsWith(".gguf");
}

/** Which format a directory (or a .gguf file) holds (errors when none). */
export function checkpointFormat(dir: string): CheckpointFormat {
  if (isGGUFPath(dir)) return "gguf";
  if (existsSync(join(dir, "config.json"))) return "hf";
  if (existsSync(join(dir, "params.json"))) return "meta";
  throw new Error(`${dir}: no config.json (Hugging Face) or params.json (Meta) here`);
}

/** The config of a checkpoint directory without reading its weights. */
export function readConfig(dir: string, meta: MetaParamsOptions = {}): LlamaConfig {
  const format = checkpointFormat(dir);
  if (format === "gguf") return readGGUFConfig(dir);
  const file = join(dir, format === "hf" ? "config.json" : "params.json");
  let json: unknown;
  try {
    json = JSON.parse(readRegularFile(file).toString("utf8"));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return format === "hf" ? fromHFConfig(json, file) : fromMetaParams(json, file, meta);
}

function readGGUFConfig(path: string): LlamaConfig {
  const f = GGUFFile.open(path);
  try {
    return ggufConfig(f);
  } finally {
    f.close();
  }
}

/** True when two tensors hold the same values bit for bit (same dtype and shape). */
function identical(a: Tensor, b: Tensor): boolean {
  if (a.dtype !== b.dtype || a.size !== b.size) return false;
  const x = a.dtype === "f32" ? new Uint32Array(a.data.buffer, a.data.byteOffset, a.size) : a.halfBits;
  const y = b.dtype === "f32" ? new Uint32Array(b.data.buffer, b.data.byteOffset, b.size) : b.halfBits;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * Read a model from an HF or Meta checkpoint directory, or a quantised one (`herd quantize`; its
 * matrices stay quantised whatever `dtype` says: inference only). The config is read first and every
 * stored tensor's shape checked against it before any is allocated; a NaN or ±Inf weight is refused.
 */
export async function loadModel(dir: string, opts: LoadOptions = {}): Promise<Llama> {
  const format = checkpointFormat(dir);
  const read = { dtype: opts.dtype ?? "f32" };
  if (format === "gguf") {
    const { config, tensors } = readGGUFModel(dir, read.dtype);
    return build(config, tensors, dir);
  }
  if (format === "hf" && quantFormatOf(dir)) {
    const config = readConfig(dir);
    const shapes = weightShapes(config);
    const { tensors } = readQuantTensors(dir, (name) => shapes.get(name));
    return build(config, tensors, join(dir, "model.safetensors"));
  }
  if (format === "hf") {
    const config = readConfig(dir);
    const { tensors } = await readHFCheckpoint(dir, { ...read, expect: weightShapes(config) });
    const single = join(dir, "model.safetensors");
    return build(config, tensors, existsSync(single) ? single : join(dir, "model.safetensors.index.json"));
  }
  // The config first, so every tensor's shape is checked against it before any is allocated; Meta's
  // files hold output.weight even for tied models, so it is expected either way.
  let config = readConfig(dir, opts.meta);
  const expect = weightShapes(config);
  expect.set(LM_HEAD, [config.vocabSize, config.hiddenSize]);
  const { tensors } = await readMetaCheckpoint(dir, { ...read, expect });
  // Meta stores output.weight even for tied models (3.2 1B/3B): one copy is enough when they are equal.
  const head = tensors.get(LM_HEAD);
  const emb = tensors.get(EMBED);
  if (opts.meta?.tieWordEmbeddings === undefined && head && emb && identical(head, emb))
    config = { ...config, tieWordEmbeddings: true };
  if (config.tieWordEmbeddings && head) {
    tensors.delete(LM_HEAD);
    head.dispose();
  }
  return build(config, tensors, join(dir, "consolidated.*.pth"));
}

function build(config: LlamaConfig, tensors: Map<string, Tensor | QuantTensor>, source: string): Llama {
  try {
    const model = new Llama(config, tensors, source);
    // Tensors the model does not use (a stored lm_head of a tied model, rotary caches) are freed.
    const used = new Set<Tensor | QuantTensor>([...model.weights.values(), ...model.quantized.values()]);
    for (const t of tensors.values()) if (!used.has(t)) t.dispose();
    return model;
  } catch (e) {
    for (const t of tensors.values()) t.dispose();
    throw e;
  }
}

/**
 * Write `model` as an HF checkpoint (config.json + model.safetensors, or shards with an index), tensors
 * in HF order, stored in `dtype` (default: as held).
 */
export async function saveModel(
  dir: string,
  model: Llama,
  opts: { dtype?: DType; maxShardBytes?: number } = {},
): Promise<void> {
  if (model.quantized.size > 0)
    throw new Error(
      `saveModel: the model's weights are ${model.dtype}; quantised models are written by writeQuantCheckpoint`,
    );
  const dtype = opts.dtype ?? (model.dtype as DType);
  const tensors = new Map<string, Tensor>();
  for (const name of weightShapes(model.config).keys()) tensors.set(name, model.weights.get(name)!);
  const w: { dtype: DType; maxShardBytes?: number } = { dtype };
  if (opts.maxShardBytes !== undefined) w.maxShardBytes = opts.maxShardBytes;
  await writeHFCheckpoint(dir, toHFConfig(model.config, dtype), tensors, w);
}
