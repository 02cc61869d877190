// Meta's checkpoint directories (llama-models, `download` from llama.com):
//
//   params.json            {"dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "multiple_of",
//                           "ffn_dim_multiplier", "norm_eps", "rope_theta", "use_scaled_rope"}
//   consolidated.00.pth    a torch.save state dict (torch.ts), one file per model-parallel rank:
//   consolidated.01.pth    1 for 1B/3B/8B, 8 for 70B and 405B-mp8, 16 for 405B-mp16
//   ...
//
// Read into HF names and layout (spec §2.8):
//   tok_embeddings.weight                → model.embed_tokens.weight              split on dim 0 (Llama 3) or 1 (Llama 2)
//   layers.N.attention_norm.weight       → model.layers.N.input_layernorm.weight  replicated
//   layers.N.attention.wq.weight         → ...self_attn.q_proj.weight             split on dim 0, Q/K permuted
//   layers.N.attention.wk.weight         → ...self_attn.k_proj.weight             split on dim 0, Q/K permuted
//   layers.N.attention.wv.weight         → ...self_attn.v_proj.weight             split on dim 0
//   layers.N.attention.wo.weight         → ...self_attn.o_proj.weight             split on dim 1
//   layers.N.ffn_norm.weight             → ...post_attention_layernorm.weight     replicated
//   layers.N.feed_forward.w1.weight      → ...mlp.gate_proj.weight                split on dim 0
//   layers.N.feed_forward.w3.weight      → ...mlp.up_proj.weight                  split on dim 0
//   layers.N.feed_forward.w2.weight      → ...mlp.down_proj.weight                split on dim 1
//   norm.weight                          → model.norm.weight                      replicated
//   output.weight                        → lm_head.weight                         split on dim 0
//   rope.freqs (older checkpoints)       → dropped (computed from params)
// Shards are concatenated along their split dim, straight into the output buffer, then wq/wk rows are
// permuted from Meta's interleaved RoPE pairs to HF's split halves (permute.ts).
//
// Tied models (3.2 1B/3B): Meta's files hold `output.weight` even though HF ties it to the embedding.
// It is returned as `lm_head.weight`; whether to use it or the embedding is the caller's decision.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { dtypeBytes } from "../../tensor/dtype.js";
import { halfZeros, shapeStr, type Tensor, zeros } from "../../tensor/tensor.js";
import { checkFinite } from "./finite.js";
import { ReadFile, readRegularFile } from "./io.js";
import { permuteRowsInPlace } from "./permute.js";
import type { ReadDtype } from "./safetensors.js";
import { readTorchElements, readTorchIndex, type TorchTensorEntry } from "./torch.js";

const LAYER_NAMES: Readonly<Record<string, string>> = {
  "attention_norm.weight": "input_layernorm.weight",
  "attention.wq.weight": "self_attn.q_proj.weight",
  "attention.wk.weight": "self_attn.k_proj.weight",
  "attention.wv.weight": "self_attn.v_proj.weight",
  "attention.wo.weight": "self_attn.o_proj.weight",
  "ffn_norm.weight": "post_attention_layernorm.weight",
  "feed_forward.w1.weight": "mlp.gate_proj.weight",
  "feed_forward.w3.weight": "mlp.up_proj.weight",
  "feed_forward.w2.weight": "mlp.down_proj.weight",
};
const TOP_NAMES: Readonly<Record<string, string>> = {
  "tok_embeddings.weight": "model.embed_tokens.weight",
  "norm.weight": "model.norm.weight",
  "output.weight": "lm_head.weight",
};

/** The HF name of a Meta tensor name, or null if it is not a Llama weight. */
export function metaToHFName(name: string): string | null {
  if (name in TOP_NAMES) return TOP_NAMES[name]!;
  const m = /^layers\.(\d+)\.(.+)$/.exec(name);
  const rest = m ? LAYER_NAMES[m[2]!] : undefined;
  return rest ? `model.layers.${m![1]}.${rest}` : null;
}

/** The Meta name of an HF tensor name, or null. */
export function hfToMetaName(name: string): string | null {
  for (const [meta, hf] of Object.entries(TOP_NAMES)) if (hf === name) return meta;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
  if (!m) return null;
  for (const [meta, hf] of Object.entries(LAYER_NAMES)) if (hf === m[2]) return `layers.${m[1]}.${meta}`;
  return null;
}

/** The dim Meta's model parallelism splits a tensor along (null: replicated). */
function splitDim(metaName: string, shardShape: readonly number[], n: number, dim: number): 0 | 1 | null {
  if (shardShape.length === 1) return null;
  if (/\.(wo|w2)\.weight$/.test(metaName)) return 1;
  if (metaName === "tok_embeddings.weight")
    return shardShape[1]! === dim ? 0 : shardShape[1]! * n === dim ? 1 : 0;
  return 0;
}

function intParam(params: Record<string, unknown>, key: string, path: string): number {
  const v = params[key];
  if (!Number.isSafeInteger(v) || (v as number) <= 0)
    throw new Error(`${path}: "${key}" is not a positive integer`);
  return v as number;
}

/**
 * Bytes each tensor of one .pth file claims, against the bytes of the storages they view: more means
 * views overlap, which a state dict never needs but a hostile file uses to make one stored tensor cost
 * many allocations. `output.weight` may view the embedding's storage (Meta's tied 3.2 1B/3B files).
 */
function checkNoOverlap(path: string, index: ReadonlyMap<string, TorchTensorEntry>): void {
  let claimed = 0;
  const storages = new Map<string, number>();
  for (const [name, e] of index) {
    storages.set(e.ref.storage.key, e.record.size);
    if (name !== "output.weight") claimed += e.shape.reduce((a, b) => a * b, 1) * dtypeBytes[e.dtype];
  }
  let held = 0;
  for (const b of storages.values()) held += b;
  if (claimed > held)
    throw new Error(
      `${path}: its tensors claim ${claimed} bytes but their storages hold ${held} (views overlap)`,
    );
}

/**
 * Read a Meta directory: params.json and every consolidated.NN.pth, tensors renamed to HF names, shards
 * concatenated, Q/K rows permuted to HF's split-halves layout. `dtype: "f32"` (default) gives f32 tensors
 * on the active backend; "keep" leaves the BF16 data as host half tensors. With `expect` (HF name →
 * shape, e.g. the config's weightShapes), every tensor's assembled shape is checked against it before
 * any tensor is allocated; a name it lacks is refused.
 */
export async function readMetaCheckpoint(
  dir: string,
  opts: { dtype?: ReadDtype; expect?: ReadonlyMap<string, readonly number[]> } = {},
): Promise<{ params: Record<string, unknown>; tensors: Map<string, Tensor> }> {
  const paramsPath = join(dir, "params.json");
  if (!existsSync(paramsPath)) throw new Error(`${paramsPath}: file is missing`);
  let params: Record<string, unknown>;
  try {
    params = JSON.parse(readRegularFile(paramsPath).toString("utf8"));
  } catch (e) {
    throw new Error(`${paramsPath}: not valid JSON (${(e as Error).message})`);
  }
  const dim = intParam(params, "dim", paramsPath);
  const nHeads = intParam(params, "n_heads", paramsPath);
  const nKv = params.n_kv_heads == null ? nHeads : intParam(params, "n_kv_heads", paramsPath);
  if (dim % nHeads) throw new Error(`${paramsPath}: dim ${dim} is not a multiple of n_heads ${nHeads}`);
  const headDim = dim / nHeads;

  const numbers = readdirSync(dir)
    .map((f) => /^consolidated\.(\d+)\.pth$/.exec(f))
    .filter((m) => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  if (numbers.length === 0) throw new Error(`${dir}: no consolidated.NN.pth files`);
  const shardPath = (i: number) => join(dir, `consolidated.${String(i).padStart(2, "0")}.pth`);
  numbers.forEach((k, i) => {
    if (k !== i) throw new Error(`${shardPath(i)}: shard ${i} of ${numbers.at(-1)! + 1} is missing`);
  });
  const n = numbers.length;

  const files: ReadFile[] = [];
  const tensors = new Map<string, Tensor>();
  try {
    const indexes: Map<string, TorchTensorEntry>[] = [];
    for (let i = 0; i < n; i++) {
      const path = shardPath(i);
      if (!existsSync(path)) throw new Error(`${path}: shard ${i} of ${n} is missing`);
      files.push(new ReadFile(path));
      indexes.push(readTorchIndex(files[i]!));
    }
    indexes.forEach((idx, i) => void checkNoOverlap(files[i]!.path, idx));
    // Plan every tensor (names, shard parts, assembled shape) and check it before allocating any.
    const plan: {
      metaName: string;
      hfName: string;
      first: TorchTensorEntry;
      parts: TorchTensorEntry[];
      split: 0 | 1 | null;
      shape: number[];
    }[] = [];
    for (const [metaName, first] of indexes[0]!) {
      if (metaName === "rope.freqs") continue;
      const hfName = metaToHFName(metaName);
      if (!hfName) throw new Error(`${files[0]!.path}: tensor '${metaName}' is not a Llama weight name`);
      const parts = indexes.map((idx, i) => {
        const e = idx.get(metaName);
        if (!e) throw new Error(`${files[i]!.path}: tensor '${metaName}' is missing (shard 0 has it)`);
        if (e.dtype !== first.dtype || shapeStr(e.shape) !== shapeStr(first.shape))
          throw new Error(
            `${files[i]!.path}: tensor '${metaName}' is ${e.dtype} ${shapeStr(e.shape)}, shard 0 has ${first.dtype} ${shapeStr(first.shape)}`,
          );
        return e;
      });
      const split = n === 1 ? null : splitDim(metaName, first.shape, n, dim);
      const shape = [...first.shape];
      if (split !== null) shape[split]! *= n;
      if (opts.expect) {
        const want = opts.expect.get(hfName);
        const shards = n > 1 ? ` (${n} shards joined)` : "";
        if (!want)
          throw new Error(`${files[0]!.path}: tensor '${metaName}' is not a weight of ${paramsPath}'s model`);
        if (shapeStr(want) !== shapeStr(shape))
          throw new Error(
            `${files[0]!.path}: tensor '${metaName}' has shape ${shapeStr(shape)}${shards}; ${paramsPath} needs ${shapeStr(want)}`,
          );
      }
      const qk = /\.attention\.w([qk])\.weight$/.exec(metaName);
      const heads = qk?.[1] === "q" ? nHeads : nKv;
      if (qk && (shape.length !== 2 || shape[0] !== heads * headDim))
        throw new Error(
          `${files[0]!.path}: tensor '${metaName}' has shape ${shapeStr(shape)}, not ${heads} heads × ${headDim} rows`,
        );
      plan.push({ metaName, hfName, first, parts, split, shape });
    }
    for (const { metaName, hfName, first, parts, split, shape } of plan) {
      const size = shape.reduce((a, b) => a * b, 1);
      const keep = opts.dtype === "keep" && first.dtype !== "f32";
      const t = keep ? halfZeros(shape, first.dtype as "bf16" | "f16") : zeros(shape);
      tensors.set(hfName, t);
      t.name = hfName;
      const out = keep ? t.halfBits : t.data;
      const held = keep ? first.dtype : "f32";
      const finite = (a: Float32Array | Uint16Array, i: number) =>
        checkFinite(a, held, files[i]!.path, metaName);
      if (split === null) {
        readTorchElements(files[0]!, first, out);
        finite(out, 0);
      } else if (split === 0)
        parts.forEach((e, i) => {
          readTorchElements(files[i]!, e, out, (i * size) / n);
          finite(out.subarray((i * size) / n, ((i + 1) * size) / n), i);
        });
      else {
        // Split along columns: each shard holds a [rows, cols/n] block; scatter its rows.
        const [rows, cols] = [first.shape[0]!, first.shape[1]!];
        const buf = keep ? new Uint16Array(rows * cols) : new Float32Array(rows * cols);
        parts.forEach((e, i) => {
          readTorchElements(files[i]!, e, buf);
          finite(buf, i);
          for (let r = 0; r < rows; r++)
            out.set(buf.subarray(r * cols, (r + 1) * cols), r * cols * n + i * cols);
        });
      }
      const qk = /\.attention\.w([qk])\.weight$/.exec(metaName);
      if (qk) permuteRowsInPlace(out, qk[1] === "q" ? nHeads : nKv, shape[1]!, true);
    }
    return { params, tensors };
  } catch (e) {
    for (const t of tensors.values()) t.dispose();
    throw e;
  } finally {
    for (const f of files) f.close();
  }
}
