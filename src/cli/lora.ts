// `herd lora merge --model IN --adapter DIR --out OUT`: fold a LoRA adapter (PEFT layout: adapter_config.json
// + adapter_model.safetensors, trained by herd or by PEFT) into its base checkpoint and write the merged
// model as a plain HF checkpoint that every command loads without the adapter. The weights keep the
// base's dtype (bf16 stays bf16: W + B·A·alpha/r is rounded once) unless --dtype says otherwise; the
// tokenizer files beside the base are copied along. OUT is written whole and atomically under the same
// rules as `herd quantize` (a new or empty folder, never IN or a folder inside or around it; --force to
// replace). A quantised base is refused: merge into its bf16/f32 source, then quantise.

import { existsSync } from "node:fs";
import { commandHelp, HELP_OPTION, type Schema, UsageError } from "../core/schema.js";
import { loadModel, saveModel } from "../model/load.js";
import { copySideFiles } from "../model/sideFiles.js";
import { loadAdapter } from "../posttrain/peft.js";
import { parseCommand } from "./command.js";
import { outputTarget, writeDirAtomic } from "./outputDir.js";

export const OPTIONS = {
  model: {
    type: "string",
    short: "m",
    arg: "IN",
    doc: "the base checkpoint directory (HF or Meta; f32 or bf16)",
  },
  adapter: { type: "string", arg: "DIR", doc: "the LoRA adapter directory (PEFT layout)" },
  out: { type: "string", arg: "OUT", doc: "where the merged checkpoint goes: a new or empty folder" },
  dtype: {
    type: "enum",
    choices: ["keep", "f32", "bf16"],
    default: "keep",
    doc: "dtype of the written weights (keep: the base's)",
  },
  force: { type: "boolean", default: false, doc: "replace OUT even if it holds files" },
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp(
  "usage: herd lora merge --model IN --adapter DIR --out OUT [--dtype keep|f32|bf16] [--force]",
  OPTIONS,
  "Folds W + B·A·alpha/r into every adapted matrix and writes a plain checkpoint (no adapter needed).",
);

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(OPTIONS, HELP, argv);
  if (!parsed) return 0;
  const { values } = parsed;
  if (!values.model) throw new UsageError("--model IN is required");
  if (!values.adapter) throw new UsageError("--adapter DIR is required");
  if (!values.out) throw new UsageError("--out OUT is required");
  if (!existsSync(values.model)) throw new Error(`${values.model}: no such directory`);
  const target = outputTarget(values.model, values.out, values.force);
  const model = await loadModel(values.model, { dtype: "keep" });
  try {
    if (model.quantized.size > 0)
      throw new UsageError(
        `--model ${values.model} is ${model.dtype}: merge into its bf16/f32 checkpoint, then run herd quantize`,
      );
    const lora = await loadAdapter(model, values.adapter);
    const n = lora.modules.length;
    lora.merge();
    const from = values.model;
    await writeDirAtomic(target, async (tmp) => {
      await saveModel(tmp, model, values.dtype === "keep" ? {} : { dtype: values.dtype });
      copySideFiles(from, tmp);
    });
    process.stdout.write(
      `${values.out}: ${n} matrices merged (rank ${lora.rank}, scaling ${lora.scaling}), ${values.dtype === "keep" ? model.dtype : values.dtype}\n`,
    );
  } finally {
    model.dispose();
  }
  return 0;
}
