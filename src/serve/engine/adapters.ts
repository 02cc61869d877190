// LoRA adapters served beside the base model (`herd serve --lora NAME=DIR`): each PEFT directory
// (adapter_config.json + adapter_model.safetensors, src/posttrain/peft.ts) is read and checked against
// the base — its fields, its target modules, every tensor's name and shape, errors naming the file and
// the field or tensor — and kept detached as a RowAdapter, the low-rank updates forwardRows adds to the
// rows that name it. The base weights are not touched, so any number of adapters share one base.
import type { Llama, LowRankDelta, RowAdapter } from "../../model/llama.js";
import { readAdapter } from "../../posttrain/peft.js";

/** A served adapter's name and directory (what `--lora NAME=DIR` says). */
export interface LoraSpec {
  name: string;
  dir: string;
}

/** The adapter in `dir` as forwardRows applies it; its tensors are kept (never freed by a scope). */
export async function loadRowAdapter(model: Llama, dir: string): Promise<RowAdapter> {
  const a = await readAdapter(model, dir);
  const deltas = new Map<string, LowRankDelta>();
  for (const m of a.modules)
    deltas.set(`${m.module}.weight`, { A: m.A.keep(), B: m.B.keep(), scale: a.scaling });
  return deltas;
}

/** Every adapter of `specs`, by name; a failure names the adapter and its directory. */
export async function loadRowAdapters(
  model: Llama,
  specs: readonly LoraSpec[],
): Promise<Map<string, RowAdapter>> {
  const out = new Map<string, RowAdapter>();
  for (const s of specs) {
    if (out.has(s.name)) throw new Error(`--lora: adapter name '${s.name}' is given twice`);
    try {
      out.set(s.name, await loadRowAdapter(model, s.dir));
    } catch (e) {
      throw new Error(`LoRA adapter '${s.name}' (${s.dir}): ${(e as Error).message}`);
    }
  }
  return out;
}
