// LoRA adapters on disk in Hugging Face PEFT's layout, so an adapter trained here loads with
// `PeftModel.from_pretrained(base, dir)` and one trained with PEFT loads here:
//   adapter_config.json        LoraConfig.to_dict() (keys sorted, as save_pretrained writes them)
//   adapter_model.safetensors  get_peft_model_state_dict's names: the module path inside the PEFT
//                              wrapper (base_model → LoraModel, .model → LlamaForCausalLM, .model →
//                              LlamaModel) then .lora_A.weight [r, in] / .lora_B.weight [out, r]:
//                              base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight
// Loading checks every field that changes what the adapter computes (DoRA, fan_in_fan_out, per-module
// rank or alpha patterns, biases, extra saved modules are refused by name) and every tensor's name and
// shape, with errors that name the file and the field or tensor.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import { readRegularFile } from "../io/regular.js";
import { readSafetensors, writeSafetensors } from "../model/checkpoint/safetensors.js";
import type { Llama } from "../model/llama.js";
import { shapeStr, type Tensor } from "../tensor/tensor.js";
import { LORA_TARGETS, Lora, type LoraOptions, loraScaling, resolveTargets } from "./lora.js";

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";

/** PEFT's state-dict prefix for a causal LM: PeftModelForCausalLM.base_model (LoraModel).model. */
export const PEFT_PREFIX = "base_model.model.";

/** The PEFT tensor names of an HF module (model.layers.3.self_attn.q_proj). */
export function peftTensorNames(module: string): { A: string; B: string } {
  return { A: `${PEFT_PREFIX}${module}.lora_A.weight`, B: `${PEFT_PREFIX}${module}.lora_B.weight` };
}

export interface SaveAdapterOptions {
  /** base_model_name_or_path: the base checkpoint (an HF id or a directory); default null. */
  baseModel?: string | null;
}

/**
 * The adapter_config.json object for `lora` (PEFT's LoraConfig fields, keys sorted). target_modules
 * are the short names (q_proj, …) when each named one is adapted in every layer, else the full module
 * names (PEFT's suffix matching reads both), so a reload adapts exactly the same modules.
 */
export function adapterConfig(lora: Lora, opts: SaveAdapterOptions = {}): Record<string, unknown> {
  const layers = lora.model.config.numHiddenLayers;
  const everyLayer = lora.targets.every((t) => lora.modules.filter((m) => m.target === t).length === layers);
  const c: Record<string, unknown> = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: opts.baseModel ?? null,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: lora.alpha,
    lora_dropout: lora.dropout,
    modules_to_save: null,
    peft_type: "LORA",
    r: lora.rank,
    rank_pattern: {},
    revision: null,
    target_modules: everyLayer ? [...lora.targets].sort() : lora.modules.map((m) => m.module).sort(),
    task_type: "CAUSAL_LM",
    use_dora: false,
    use_rslora: lora.useRslora,
  };
  return Object.fromEntries(Object.entries(c).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Write `lora` to `dir` (created) as adapter_config.json + adapter_model.safetensors (f32), atomically. */
export async function saveAdapter(lora: Lora, dir: string, opts: SaveAdapterOptions = {}): Promise<void> {
  const tensors = new Map<string, Tensor>();
  for (const m of lora.modules) {
    const n = peftTensorNames(m.module);
    tensors.set(n.A, m.A);
    tensors.set(n.B, m.B);
  }
  writeFileAtomic(join(dir, ADAPTER_CONFIG), `${JSON.stringify(adapterConfig(lora, opts), null, 2)}\n`);
  await writeSafetensors(join(dir, ADAPTER_WEIGHTS), tensors);
}

/** adapter_config.json of `dir`, checked: LoraOptions (init false) and base_model_name_or_path. */
export function readAdapterConfig(dir: string): { options: LoraOptions; baseModel: string | null } {
  const file = join(dir, ADAPTER_CONFIG);
  if (!existsSync(file)) throw new Error(`${dir}: no ${ADAPTER_CONFIG} (not a PEFT adapter directory)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readRegularFile(file).toString("utf8"));
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new Error(`${file}: not a JSON object`);
  const c = raw as Record<string, unknown>;
  const bad = (field: string, want: string): never => {
    throw new Error(`${file}: field '${field}' must be ${want}, got ${JSON.stringify(c[field])}`);
  };
  const absentOr = (field: string, ok: (v: unknown) => boolean, want: string) => {
    if (c[field] !== undefined && !ok(c[field])) bad(field, want);
  };
  const empty = (v: unknown) =>
    v === null ||
    (Array.isArray(v) && v.length === 0) ||
    (typeof v === "object" && Object.keys(v as object).length === 0);
  if (c.peft_type !== "LORA") bad("peft_type", '"LORA"');
  if (!(Number.isInteger(c.r) && (c.r as number) >= 1)) bad("r", "an integer ≥ 1");
  if (!(typeof c.lora_alpha === "number" && c.lora_alpha > 0)) bad("lora_alpha", "a number > 0");
  absentOr("lora_dropout", (v) => typeof v === "number" && v >= 0 && v < 1, "a number in [0, 1)");
  const t = c.target_modules;
  if (!(typeof t === "string" || (Array.isArray(t) && t.length > 0 && t.every((x) => typeof x === "string"))))
    bad("target_modules", `a list of module names (${LORA_TARGETS.join(", ")}) or a pattern`);
  absentOr("task_type", (v) => v === null || v === "CAUSAL_LM", '"CAUSAL_LM"');
  absentOr("bias", (v) => v === "none", '"none" (herd adapters have no bias terms)');
  absentOr("use_dora", (v) => v === false, "false (DoRA is not supported)");
  absentOr("fan_in_fan_out", (v) => v === false, "false (Llama's linear layers are [out, in])");
  absentOr("use_rslora", (v) => typeof v === "boolean", "true or false");
  absentOr("lora_bias", (v) => v === false, "false (herd adapters have no bias terms)");
  for (const f of [
    "rank_pattern",
    "alpha_pattern",
    "modules_to_save",
    "layers_to_transform",
    "layer_replication",
    "exclude_modules",
    "trainable_token_indices",
  ])
    absentOr(f, empty, "empty or null (not supported)");
  const base = c.base_model_name_or_path;
  return {
    options: {
      rank: c.r as number,
      alpha: c.lora_alpha as number,
      dropout: (c.lora_dropout as number | undefined) ?? 0,
      targets: t as string | string[],
      useRslora: (c.use_rslora as boolean | undefined) ?? false,
      init: false,
    },
    baseModel: typeof base === "string" ? base : null,
  };
}

/**
 * Attach the PEFT adapter in `dir` to `model` (its base weights become frozen, as with applyLora).
 * Every tensor the config's targets need must be in adapter_model.safetensors with its shape, and no
 * other; f16/bf16 files are widened to f32.
 */
export async function loadAdapter(model: Llama, dir: string): Promise<Lora> {
  const { options } = readAdapterConfig(dir);
  const modules = targetModules(model, dir, options);
  const tensors = await readAdapterTensors(model, dir, options.rank, modules);
  try {
    const lora = new Lora(model, options);
    copyInto(lora, tensors);
    return lora;
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

/** A PEFT adapter read and checked against a model, not attached to it. */
export interface AdapterWeights {
  options: LoraOptions;
  /** alpha / r (alpha / √r with rsLoRA). */
  scaling: number;
  /** Each adapted module (HF name, e.g. model.layers.0.self_attn.q_proj) with its A [r, in] and B [out, r] (f32). */
  modules: { module: string; A: Tensor; B: Tensor }[];
}

/**
 * The PEFT adapter in `dir`, checked as loadAdapter checks it (config fields, target modules, every
 * tensor's name and shape against `model`), but left detached: what a server holds beside the base to
 * apply per request. The caller owns (and disposes) the tensors.
 */
export async function readAdapter(model: Llama, dir: string): Promise<AdapterWeights> {
  const { options } = readAdapterConfig(dir);
  const modules = targetModules(model, dir, options);
  const tensors = await readAdapterTensors(model, dir, options.rank, modules);
  return {
    options,
    scaling: loraScaling(options.rank, options.alpha, options.useRslora),
    modules: modules.map((m) => {
      const n = peftTensorNames(m.module);
      return { module: m.module, A: tensors.get(n.A)!, B: tensors.get(n.B)! };
    }),
  };
}

/**
 * Read the adapter weights in `dir` into `lora`'s A and B (a resumed LoRA run: the checkpoint folder
 * holds the adapter it had trained). The tensors must be exactly lora's modules' with their shapes.
 */
export async function readAdapterInto(lora: Lora, dir: string): Promise<void> {
  const tensors = await readAdapterTensors(lora.model, dir, lora.rank, lora.modules);
  try {
    copyInto(lora, tensors);
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

/** The modules adapter_config.json's target_modules select in `model` (an error names the field). */
function targetModules(model: Llama, dir: string, options: LoraOptions) {
  try {
    return resolveTargets(options.targets!, model.config.numHiddenLayers);
  } catch (e) {
    throw new Error(`${join(dir, ADAPTER_CONFIG)}: field 'target_modules': ${(e as Error).message}`);
  }
}

function copyInto(lora: Lora, tensors: Map<string, Tensor>): void {
  for (const m of lora.modules) {
    const n = peftTensorNames(m.module);
    m.A.data.set(tensors.get(n.A)!.data);
    m.B.data.set(tensors.get(n.B)!.data);
  }
}

/** adapter_model.safetensors of `dir` (as f32), checked to hold exactly `modules`' A and B of rank `rank`. */
async function readAdapterTensors(
  model: Llama,
  dir: string,
  rank: number,
  modules: readonly { module: string }[],
): Promise<Map<string, Tensor>> {
  const file = join(dir, ADAPTER_WEIGHTS);
  if (!existsSync(file))
    throw new Error(
      `${dir}: no ${ADAPTER_WEIGHTS}${existsSync(join(dir, "adapter_model.bin")) ? " (adapter_model.bin is not read: convert it to safetensors)" : ""}`,
    );
  const tensors = await readSafetensors(file, { dtype: "f32" });
  try {
    const want = new Map<string, number[]>();
    for (const m of modules) {
      const [out, inp] = model.matrix(`${m.module}.weight`)!.shape as [number, number];
      const n = peftTensorNames(m.module);
      want.set(n.A, [rank, inp]);
      want.set(n.B, [out, rank]);
    }
    for (const name of tensors.keys())
      if (!want.has(name))
        throw new Error(
          `${file}: tensor '${name}' is not a LoRA weight of the modules adapter_config.json targets`,
        );
    for (const [name, shape] of want) {
      const t = tensors.get(name);
      if (!t) throw new Error(`${file}: tensor '${name}' is missing`);
      if (shapeStr(t.shape) !== shapeStr(shape))
        throw new Error(
          `${file}: tensor '${name}' has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)}`,
        );
    }
    return tensors;
  } catch (e) {
    for (const t of tensors.values()) t.dispose();
    throw e;
  }
}
