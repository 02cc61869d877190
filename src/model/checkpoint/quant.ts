// Quantised checkpoint directories, as `herd quantize` writes them: an HF directory whose one safetensors
// file holds the matrices as GGUF Q8_0/Q4_0 block bytes, so the safetensors reader, its integrity checks
// and the atomic writer are reused.
//
//   config.json        the source model's HF config (as toHFConfig writes it)
//   model.safetensors  __metadata__ {"format": "pt", "herd.quantization": "q8_0" | "q4_0", "herd.block_size": "32"}
//                      every 2-D weight [n, k] (embedding, projections, lm_head) as U8 [n, ceil(k/32)·B]:
//                        each row's blocks back to back (B = 34 bytes for Q8_0, 18 for Q4_0; layout in
//                        src/backends/js/quant.ts), the last block of a row zero-padded when k % 32 ≠ 0;
//                      every 1-D weight (RMSNorm) as F32.
// The logical k of a U8 tensor comes from the model config (the reader checks the stored width equals
// ceil(k/32)·B for it). Tensors are stored F32 first, then U8, names in byte order within each.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isQuantFormat, type QuantFormat, QuantTensor, quantRowBytes } from "../../tensor/quant.js";
import { shapeStr, type Tensor } from "../../tensor/tensor.js";
import { checkFiniteBlocks, checkTensorFinite } from "./finite.js";
import { HF_CONFIG, HF_SINGLE } from "./hf.js";
import { AtomicFiles, WriteFile } from "./io.js";
import { SafetensorsFile, safetensorsHeader } from "./safetensors.js";

export const QUANT_METADATA_KEY = "herd.quantization";

/** The quantisation format of an HF directory's model.safetensors, or null for an ordinary checkpoint. */
export function quantFormatOf(dir: string): QuantFormat | null {
  let f: SafetensorsFile;
  try {
    f = SafetensorsFile.open(join(dir, HF_SINGLE));
  } catch {
    return null; // no single file (sharded or Meta): never quantised by herd
  }
  f.close();
  const v = f.header.metadata?.[QUANT_METADATA_KEY];
  if (v === undefined) return null;
  if (!isQuantFormat(v))
    throw new Error(`${f.path}: __metadata__['${QUANT_METADATA_KEY}'] is '${v}', not q8_0 or q4_0`);
  return v;
}

/**
 * Read a quantised directory's tensors: U8 entries become QuantTensors with the shape `shapeOf(name)`
 * gives (the model config's), the others f32 tensors. Errors name the file and the tensor.
 */
export function readQuantTensors(
  dir: string,
  shapeOf: (name: string) => readonly number[] | undefined,
): { format: QuantFormat; tensors: Map<string, Tensor | QuantTensor> } {
  const format = quantFormatOf(dir);
  const path = join(dir, HF_SINGLE);
  if (!format) throw new Error(`${path}: not a quantised checkpoint (no '${QUANT_METADATA_KEY}' metadata)`);
  const f = SafetensorsFile.open(path);
  const tensors = new Map<string, Tensor | QuantTensor>();
  try {
    for (const name of f.names()) {
      const e = f.header.entries.get(name)!;
      if (e.dtype !== "U8") {
        tensors.set(name, checkTensorFinite(f.read(name), path));
        continue;
      }
      const shape = shapeOf(name);
      if (!shape) throw new Error(`${path}: tensor '${name}' is not a weight of this Llama config`);
      const [n, k] = shape as [number, number];
      const width = shape.length === 2 ? quantRowBytes(format, k) : -1;
      if (e.shape.length !== 2 || e.shape[0] !== n || e.shape[1] !== width)
        throw new Error(
          `${path}: tensor '${name}' is U8 ${shapeStr(e.shape)}; ${format} blocks of the config's ${shapeStr(shape)} are [${n},${width}]`,
        );
      const q = QuantTensor.allocate(format, [n, k]);
      q.name = name;
      tensors.set(name, q);
      f.readRawInto(name, q.blocks);
      checkFiniteBlocks(q.blocks, format, path, name);
    }
    return { format, tensors };
  } catch (e) {
    for (const t of tensors.values()) t.dispose();
    throw e;
  } finally {
    f.close();
  }
}

/**
 * Write a quantised directory atomically (temporary names, renamed into place together). Every entry of
 * `tensors` must be a QuantTensor of `format` or an f32/bf16 1-D tensor (stored F32).
 */
export function writeQuantCheckpoint(
  dir: string,
  config: Record<string, unknown>,
  tensors: ReadonlyMap<string, Tensor | QuantTensor>,
  format: QuantFormat,
): void {
  const utf8 = new TextEncoder();
  const byName = (a: [string, unknown], b: [string, unknown]) =>
    Buffer.compare(utf8.encode(a[0]), utf8.encode(b[0]));
  const plain: [string, Tensor][] = [];
  const quant: [string, QuantTensor][] = [];
  for (const [name, t] of tensors) {
    if (t instanceof QuantTensor) {
      if (t.format !== format)
        throw new Error(`writeQuantCheckpoint: '${name}' is ${t.format}, not ${format}`);
      quant.push([name, t]);
    } else plain.push([name, t]);
  }
  plain.sort(byName);
  quant.sort(byName);
  const parts = [
    `"__metadata__":${JSON.stringify({ format: "pt", [QUANT_METADATA_KEY]: format, "herd.block_size": "32" })}`,
  ];
  let offset = 0;
  const entry = (name: string, dtype: string, shape: readonly number[], bytes: number) => {
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${dtype}","shape":${JSON.stringify(shape)},"data_offsets":[${offset},${offset + bytes}]}`,
    );
    offset += bytes;
  };
  for (const [name, t] of plain) entry(name, "F32", t.shape, t.size * 4);
  for (const [name, q] of quant)
    entry(name, "U8", [q.shape[0], quantRowBytes(format, q.shape[1])], q.blocks.length);
  const head = safetensorsHeader(parts);

  mkdirSync(dir, { recursive: true });
  const files = new AtomicFiles();
  try {
    const w = new WriteFile(files.temp(join(dir, HF_SINGLE)));
    try {
      w.write(head);
      for (const [, t] of plain) w.writeElements(t.dtype === "f32" ? t.data : t.halfBits, t.dtype, "f32");
      for (const [, q] of quant) w.write(q.blocks);
    } catch (e) {
      w.abandon();
      throw e;
    }
    w.close();
    writeFileSync(files.temp(join(dir, HF_CONFIG)), `${JSON.stringify(config, null, 2)}\n`);
    files.commit();
  } catch (e) {
    files.abort();
    throw e;
  }
}
