// Hugging Face checkpoint directories, as `LlamaForCausalLM.save_pretrained` writes them.
//
//   config.json                       LlamaConfig fields (read and written as a plain JSON object)
//   model.safetensors                 every tensor, when they fit one file; or, sharded:
//   model-00001-of-0000M.safetensors  ... model-0000M-of-0000M.safetensors (5-digit numbers, from 1)
//   model.safetensors.index.json      {"metadata": {"total_size": <tensor bytes, headers excluded>},
//                                      "weight_map": {"<tensor name>": "<shard file>", ...}}  (names sorted)
// A directory holding model.safetensors is read from it (as transformers does); otherwise from the index.
// Tensor names are HF's (`model.embed_tokens.weight`, `model.layers.N.self_attn.q_proj.weight`, ...,
// `lm_head.weight`). A model with tie_word_embeddings has no `lm_head.weight`: leaving it out when
// writing such a model is the caller's choice, as it is the caller's check that every tensor is there
// with the configured shape (`expectTensor`). A tensor holding a NaN or ±Inf is refused (finite.ts).
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type DType, dtypeBytes } from "../../tensor/dtype.js";
import { shapeStr, type Tensor } from "../../tensor/tensor.js";
import { checkTensorFinite } from "./finite.js";
import { AtomicFiles, readRegularFile } from "./io.js";
import {
  type ReadDtype,
  SafetensorsFile,
  type SafetensorsHeader,
  writeSafetensorsFile,
} from "./safetensors.js";

export const HF_CONFIG = "config.json";
export const HF_SINGLE = "model.safetensors";
export const HF_INDEX = "model.safetensors.index.json";

/** Shard file name: model-00001-of-00003.safetensors. */
export function hfShardName(i: number, n: number): string {
  const pad = (x: number) => String(x).padStart(5, "0");
  return `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
}

function readJson(path: string): unknown {
  if (!existsSync(path)) throw new Error(`${path}: file is missing`);
  try {
    return JSON.parse(readRegularFile(path).toString("utf8"));
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

function readObject(path: string): Record<string, unknown> {
  const v = readJson(path);
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`${path}: not a JSON object`);
  return v as Record<string, unknown>;
}

/** Read the weight map of an index file: tensor name → shard file name (a plain name in `dir`). */
export function readIndex(path: string): Map<string, string> {
  const map = readObject(path).weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map))
    throw new Error(`${path}: no "weight_map" object`);
  const out = new Map<string, string>();
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== "string" || !/^[^/\\]+$/.test(file) || file === "." || file === "..")
      throw new Error(`${path}: tensor '${name}' maps to ${JSON.stringify(file)}, not a file name`);
    out.set(name, file);
  }
  return out;
}

/** Throw if a tensor of `header` has another shape than `expect` gives it (names it lacks are the caller's). */
function checkShapes(
  header: SafetensorsHeader,
  names: readonly string[],
  expect: ShapeMap,
  cfg: string,
): void {
  for (const name of names) {
    const want = expect.get(name);
    const e = header.entries.get(name);
    if (want && e && shapeStr(want) !== shapeStr(e.shape))
      throw new Error(
        `${header.path}: tensor '${name}' has shape ${shapeStr(e.shape)}; ${cfg} needs ${shapeStr(want)}`,
      );
  }
}

type ShapeMap = ReadonlyMap<string, readonly number[]>;

/**
 * Read an HF directory: config.json and every tensor. `dtype: "f32"` (default) gives f32 tensors on the
 * active backend; "keep" leaves BF16/F16 tensors as host half tensors. Tensors are named (`t.name`).
 * With `expect` (name → shape, e.g. the config's weightShapes), every file's header is checked against
 * it before any tensor is read.
 */
export async function readHFCheckpoint(
  dir: string,
  opts: { dtype?: ReadDtype; expect?: ShapeMap } = {},
): Promise<{ config: Record<string, unknown>; tensors: Map<string, Tensor> }> {
  const cfgPath = join(dir, HF_CONFIG);
  const config = readObject(cfgPath);
  // Which names to read from which file: model.safetensors whole, or the index's shards.
  const plan: [path: string, names: string[] | null][] = [];
  const indexPath = join(dir, HF_INDEX);
  if (existsSync(join(dir, HF_SINGLE))) plan.push([join(dir, HF_SINGLE), null]);
  else {
    if (!existsSync(indexPath)) throw new Error(`${dir}: neither ${HF_SINGLE} nor ${HF_INDEX} is there`);
    const byShard = new Map<string, string[]>();
    for (const [name, file] of readIndex(indexPath)) {
      if (!byShard.has(file)) byShard.set(file, []);
      byShard.get(file)!.push(name);
    }
    for (const [file, names] of byShard) {
      const path = join(dir, file);
      if (!existsSync(path))
        throw new Error(`${indexPath}: shard ${file} (holding tensor '${names[0]}') is missing`);
      plan.push([path, names]);
    }
  }
  const withFile = <T>(path: string, fn: (f: SafetensorsFile) => T): T => {
    const f = SafetensorsFile.open(path);
    try {
      return fn(f);
    } finally {
      f.close();
    }
  };
  // Every header first (one file open at a time): names listed, shapes as expected.
  for (const [path, names] of plan)
    withFile(path, (f) => {
      for (const name of names ?? [])
        if (!f.has(name))
          throw new Error(`${path}: tensor '${name}' is listed in ${HF_INDEX} but not in this shard`);
      if (opts.expect) checkShapes(f.header, names ?? f.names(), opts.expect, cfgPath);
    });
  const tensors = new Map<string, Tensor>();
  try {
    for (const [path, names] of plan)
      withFile(path, (f) => {
        for (const name of names ?? f.names()) tensors.set(name, checkTensorFinite(f.read(name, opts), path));
      });
    return { config, tensors };
  } catch (e) {
    for (const t of tensors.values()) t.dispose();
    throw e;
  }
}

/**
 * Write an HF directory atomically: every file goes to a temporary name and is renamed into place once
 * all are written; weight files of an earlier save that the new one does not use are then removed.
 * Tensors are stored in `dtype` (default: each tensor's own). With `maxShardBytes`, tensors are packed
 * in the map's order into shards of at most that many data bytes (a larger tensor gets a shard of its
 * own), as transformers' `max_shard_size` does.
 */
export async function writeHFCheckpoint(
  dir: string,
  config: Record<string, unknown>,
  tensors: Map<string, Tensor>,
  opts: { dtype?: DType; maxShardBytes?: number } = {},
): Promise<void> {
  const max = opts.maxShardBytes ?? Number.POSITIVE_INFINITY;
  if (!(max > 0)) throw new Error(`writeHFCheckpoint: maxShardBytes ${max} must be positive`);
  const shards: Map<string, Tensor>[] = [];
  let current = new Map<string, Tensor>();
  let bytes = 0;
  let total = 0;
  for (const [name, t] of tensors) {
    const b = t.size * dtypeBytes[opts.dtype ?? t.dtype];
    if (current.size > 0 && bytes + b > max) {
      shards.push(current);
      current = new Map();
      bytes = 0;
    }
    current.set(name, t);
    bytes += b;
    total += b;
  }
  shards.push(current);

  mkdirSync(dir, { recursive: true });
  const files = new AtomicFiles();
  const written = new Set<string>([HF_CONFIG]);
  try {
    const wopts = opts.dtype ? { dtype: opts.dtype } : {};
    if (shards.length === 1) {
      writeSafetensorsFile(files.temp(join(dir, HF_SINGLE)), shards[0]!, wopts);
      written.add(HF_SINGLE);
    } else {
      const weightMap: Record<string, string> = {};
      shards.forEach((shard, i) => {
        const file = hfShardName(i, shards.length);
        writeSafetensorsFile(files.temp(join(dir, file)), shard, wopts);
        for (const name of shard.keys()) weightMap[name] = file;
        written.add(file);
      });
      const sorted = Object.fromEntries(
        Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      );
      const index = { metadata: { total_size: total }, weight_map: sorted };
      writeFileSync(files.temp(join(dir, HF_INDEX)), `${JSON.stringify(index, null, 2)}\n`);
      written.add(HF_INDEX);
    }
    writeFileSync(files.temp(join(dir, HF_CONFIG)), `${JSON.stringify(config, null, 2)}\n`);
    files.commit();
  } catch (e) {
    files.abort();
    throw e;
  }
  for (const f of readdirSync(dir))
    if (
      !written.has(f) &&
      (f === HF_SINGLE || f === HF_INDEX || /^model-\d{5}-of-\d{5}\.safetensors$/.test(f))
    )
      rmSync(join(dir, f));
}

/** The tensor `name` of `map`, checked to have `shape`; errors name `file` (where it came from). */
export function expectTensor(
  map: ReadonlyMap<string, Tensor>,
  name: string,
  shape: readonly number[],
  file: string,
): Tensor {
  const t = map.get(name);
  if (!t) throw new Error(`${file}: tensor '${name}' is missing`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
    throw new Error(
      `${file}: tensor '${name}' has shape ${shapeStr(t.shape)}, the config needs ${shapeStr(shape)}`,
    );
  return t;
}
