// Averaging checkpoints (spec §6.3's annealing average, §7.2's averaging at every post-training stage):
// the element-wise weighted mean of HF checkpoints of one architecture, uniform by default. Every
// checkpoint must hold the same tensors with the same shapes and dtypes and the same model config (errors
// name the checkpoint and the mismatching tensor or field); each tensor comes back in its stored dtype
// (bf16 stays bf16, rounded to nearest even), summed in f64. Memory: one f64 accumulator of the model
// plus one checkpoint being read. Reward models (score.weight) average like any other.
import { join } from "node:path";
import { decodeHalf, encodeHalf } from "../io/half.js";
import { fromArray, fromHalfBits, shapeStr, type Tensor } from "../tensor/tensor.js";
import { readHFCheckpoint } from "./checkpoint/hf.js";

/** config.json fields that do not describe the architecture. */
const BENIGN = new Set(["torch_dtype", "transformers_version", "_name_or_path"]);

/** Weights normalised to sum 1 (default uniform); errors on a count mismatch or a negative weight. */
export function normaliseWeights(n: number, weights?: readonly number[]): number[] {
  const w = weights ?? new Array<number>(n).fill(1);
  if (w.length !== n) throw new Error(`average: ${w.length} weights for ${n} checkpoints`);
  if (w.some((x) => !(x >= 0) || !Number.isFinite(x)))
    throw new Error(`average: weights must be finite and ≥ 0 (got ${w.join(", ")})`);
  const s = w.reduce((a, b) => a + b, 0);
  if (!(s > 0)) throw new Error("average: the weights sum to 0");
  return w.map((x) => x / s);
}

const f32Of = (t: Tensor): Float32Array =>
  t.dtype === "f32" ? t.data : decodeHalf(t.halfBits, t.dtype as "bf16" | "f16");

/**
 * The weighted mean of the weights of `dirs` (HF checkpoints of one architecture), each tensor in its
 * stored dtype, with the first checkpoint's config. The caller disposes the tensors.
 */
export async function averageWeights(
  dirs: readonly string[],
  weights?: readonly number[],
): Promise<{ config: Record<string, unknown>; tensors: Map<string, Tensor> }> {
  if (dirs.length === 0) throw new Error("average: no checkpoints");
  const w = normaliseWeights(dirs.length, weights);
  let config: Record<string, unknown> | null = null;
  const sums = new Map<string, { shape: readonly number[]; dtype: string; acc: Float64Array }>();
  for (const [k, dir] of dirs.entries()) {
    const read = await readHFCheckpoint(dir, { dtype: "keep" });
    try {
      if (!config) config = read.config;
      else
        for (const key of new Set([...Object.keys(config), ...Object.keys(read.config)]))
          if (!BENIGN.has(key) && JSON.stringify(config[key]) !== JSON.stringify(read.config[key]))
            throw new Error(
              `${join(dir, "config.json")}: field '${key}' is ${JSON.stringify(read.config[key])}, ${dirs[0]} has ${JSON.stringify(config[key])}: not the same architecture`,
            );
      if (k > 0 && read.tensors.size !== sums.size) {
        const missing = [...sums.keys()].find((n) => !read.tensors.has(n));
        const extra = [...read.tensors.keys()].find((n) => !sums.has(n));
        throw new Error(
          missing
            ? `${dir}: tensor '${missing}' is missing (it is in ${dirs[0]})`
            : `${dir}: tensor '${extra}' is not in ${dirs[0]}`,
        );
      }
      for (const [name, t] of read.tensors) {
        let s = sums.get(name);
        if (!s) {
          if (k > 0) throw new Error(`${dir}: tensor '${name}' is not in ${dirs[0]}`);
          s = { shape: [...t.shape], dtype: t.dtype, acc: new Float64Array(t.size) };
          sums.set(name, s);
        }
        if (shapeStr(s.shape) !== shapeStr(t.shape) || s.dtype !== t.dtype)
          throw new Error(
            `${dir}: tensor '${name}' is ${t.dtype} ${shapeStr(t.shape)}, ${dirs[0]} has ${s.dtype} ${shapeStr(s.shape)}`,
          );
        const x = f32Of(t);
        const wk = w[k]!;
        for (let i = 0; i < x.length; i++) s.acc[i]! += wk * x[i]!;
      }
    } finally {
      for (const t of read.tensors.values()) t.dispose();
    }
  }
  const tensors = new Map<string, Tensor>();
  for (const [name, s] of sums) {
    const t =
      s.dtype === "f32"
        ? fromArray(Float32Array.from(s.acc), s.shape)
        : fromHalfBits(
            encodeHalf(Float32Array.from(s.acc), s.dtype as "bf16" | "f16"),
            s.shape,
            s.dtype as "bf16" | "f16",
          );
    t.name = name;
    tensors.set(name, t);
  }
  return { config: config!, tensors };
}
