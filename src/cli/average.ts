// `herd average A B C [--weights 1,2,1] --output DIR`: the (weighted) element-wise mean of checkpoints of
// one architecture (spec §7.2). Argument parsing and printing only (src/posttrain/average.ts averages).
import { commandHelp, HELP_OPTION, parseCli, type Schema, UsageError } from "../core/schema.js";
import { averageModels } from "../posttrain/average.js";

const USAGE = "usage: herd average CHECKPOINT CHECKPOINT... --output DIR [--weights W1,W2,...]";

const PROSE = `Averages HF checkpoint directories of one architecture (SFT, DPO or reward-model runs' final/
folders, or any HF Llama directory), as the paper does at every post-training stage. Every checkpoint
must have the same config and the same tensors, shapes and dtypes (an error names the mismatching
tensor); each tensor keeps its dtype. The first checkpoint's tokenizer files are copied.`;

export const OPTIONS = {
  output: { type: "string", short: "o", arg: "DIR", doc: "where the averaged checkpoint is written" },
  weights: {
    type: "numbers",
    min: 0,
    arg: "W,...",
    defaultDoc: "uniform",
    doc: "one weight per checkpoint (normalised to sum 1)",
  },
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp(USAGE, OPTIONS, PROSE);

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(OPTIONS, argv, { positionals: true });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (positionals.length < 2) throw new UsageError("give at least two checkpoints");
  if (!values.output) throw new UsageError("--output DIR is required");
  const n = await averageModels(positionals, values.output, values.weights ?? undefined);
  process.stdout.write(`averaged ${positionals.length} checkpoints (${n} tensors) into ${values.output}\n`);
  return 0;
}
