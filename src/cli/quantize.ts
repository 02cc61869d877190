// `herd quantize --model IN --out OUT --format q8_0|q4_0`: weight-only quantisation of a bf16 or f32
// checkpoint into a directory `herd generate`, `herd chat` and `herd perplexity` load as they are
// (format: src/model/checkpoint/quant.ts). The tokenizer files beside the model are copied along.
//
// The output folder is written whole: everything goes into a temporary folder beside it, renamed into
// place at the end, so no file of an earlier model in OUT survives mixed in with the new weights, and a
// failure leaves OUT as it was. OUT must not already hold files unless --force, and may never be (after
// resolving symlinks) the model folder, a folder inside it, or one that holds it.
import { existsSync } from "node:fs";
import { commandHelp, HELP_OPTION, type Schema } from "../core/schema.js";
import { quantizeCheckpoint } from "../model/quantize.js";
import { copySideFiles } from "../model/sideFiles.js";
import { QUANT_FORMATS } from "../tensor/quant.js";
import { parseCommand } from "./command.js";
import { UsageError } from "./modelArgs.js";
import { outputTarget, writeDirAtomic } from "./outputDir.js";

export const OPTIONS = {
  model: {
    type: "string",
    short: "m",
    arg: "DIR",
    doc: "a bf16 or f32 Hugging Face checkpoint directory (or Meta: params.json + .pth)",
  },
  out: {
    type: "string",
    arg: "DIR",
    doc: "where the quantised checkpoint goes: a new or empty folder, written whole and atomically (never IN, a folder inside IN or one holding it, symlinks resolved)",
  },
  force: {
    type: "boolean",
    default: false,
    doc: "replace OUT even if it holds files (all of them: OUT ends up holding only the new model)",
  },
  format: {
    type: "enum",
    choices: QUANT_FORMATS,
    doc: "q8_0: 8-bit, blocks of 32 with an f16 scale (8.5 bits a weight)\nq4_0: 4-bit, blocks of 32 with an f16 scale (4.5 bits a weight)",
  },
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp(
  "usage: herd quantize --model IN --out OUT --format q8_0|q4_0 [--force]",
  OPTIONS,
  `Every matrix (embedding, projections, lm_head) is quantised by ggml's reference rules; RMSNorm weights stay
f32. Check the cost with: herd perplexity --model OUT --text held-out.txt`,
);

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(OPTIONS, HELP, argv, { required: ["model", "out"] });
  if (!parsed) return 0;
  const { values } = parsed;
  if (!values.format) throw new UsageError(`--format ${QUANT_FORMATS.join("|")} is required`);
  if (!existsSync(values.model)) throw new Error(`${values.model}: no such directory`);
  const target = outputTarget(values.model, values.out, values.force);
  const t0 = performance.now();
  const format = values.format;
  let report: Awaited<ReturnType<typeof quantizeCheckpoint>> | undefined;
  await writeDirAtomic(target, async (tmp) => {
    report = await quantizeCheckpoint(values.model, tmp, format, (name, i, n) => {
      process.stderr.write(`[${i + 1}/${n}] ${name}\n`);
    });
    copySideFiles(values.model, tmp);
  });
  if (!report) throw new Error("quantize: no report");
  const mb = (b: number) => `${(b / 1e6).toFixed(b < 1e7 ? 2 : 0)} MB`;
  process.stdout.write(
    `${values.out}: ${report.tensors} tensors, ${report.format}, weights ${mb(report.bytesIn)} → ${mb(report.bytesOut)} (${((report.bytesOut / report.bytesIn) * 100).toFixed(1)}%) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  return 0;
}
