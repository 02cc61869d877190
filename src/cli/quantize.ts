// `herd quantize --model IN --out OUT --format q8_0|q4_0`: weight-only quantisation of a bf16 or f32
// checkpoint into a directory `herd generate`, `herd chat` and `herd perplexity` load as they are
// (format: src/model/checkpoint/quant.ts). The tokenizer files beside the model are copied along.
//
// The output folder is written whole: everything goes into a temporary folder beside it, renamed into
// place at the end, so no file of an earlier model in OUT survives mixed in with the new weights, and a
// failure leaves OUT as it was. OUT must not already hold files unless --force, and may never be (after
// resolving symlinks) the model folder, a folder inside it, or one that holds it.
import { existsSync, mkdirSync, readdirSync, realpathSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, resolve, sep } from "node:path";
import { commandHelp, HELP_OPTION, type Schema } from "../core/schema.js";
import { writeFileAtomic } from "../io/atomic.js";
import { readRegularFile } from "../model/checkpoint/io.js";
import { quantizeCheckpoint } from "../model/quantize.js";
import { QUANT_FORMATS } from "../tensor/quant.js";
import { parseCommand } from "./command.js";
import { UsageError } from "./modelArgs.js";

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

/** Largest tokenizer or settings file copied (Llama 3's tokenizer.json is 9 MB). */
export const MAX_COPIED_BYTES = 256 << 20;

/** Files beside the weights that a quantised directory needs too (tokenizers, generation settings). */
export const COPIED = [
  "vocab.json",
  "tokenizer.model",
  "tokenizer.json",
  "tokenizer_config.json",
  "generation_config.json",
];

export function randomTag(): string {
  return Math.random().toString(36).slice(2, 10);
}

/** True when `inner` is `outer` or a path inside it (both real, absolute). */
function within(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith(sep) ? outer : outer + sep);
}

/**
 * The real path `--out` names (symlinks resolved, also of its nearest existing parent), checked: not the
 * model folder, not inside it, not holding it; a directory or nothing; holding files only with --force.
 */
export function outputTarget(model: string, out: string, force: boolean): string {
  const src = realpathSync(model);
  let target: string;
  if (existsSync(out)) target = realpathSync(out);
  else {
    // Resolve the nearest parent that exists, so a symlinked parent cannot hide the model folder.
    let head = resolve(out);
    const tail: string[] = [];
    while (!existsSync(head)) {
      tail.unshift(basename(head));
      head = dirname(head);
    }
    target = join(realpathSync(head), ...tail);
  }
  if (within(target, src))
    throw new UsageError(`--out ${out} is --model ${model} or inside it (${target}); choose another folder`);
  if (within(src, target))
    throw new UsageError(`--out ${out} holds --model ${model}; replacing it would delete the model`);
  if (existsSync(target)) {
    if (!statSync(target).isDirectory()) throw new UsageError(`--out ${out}: not a directory`);
    if (!force && readdirSync(target).length > 0)
      throw new UsageError(`--out ${out}: exists and is not empty; pass --force to replace it`);
  }
  return target;
}

/**
 * Put the finished folder `tmp` at `target`: an existing target is moved aside first and removed once
 * the new one is in place (a crash in between leaves it as \`.NAME.old-*\` beside the target).
 */
export function replaceDir(tmp: string, target: string): void {
  if (!existsSync(target)) {
    mkdirSync(dirname(target), { recursive: true });
    renameSync(tmp, target);
    return;
  }
  const old = join(dirname(target), `.${basename(target)}.old-${process.pid}-${randomTag()}`);
  renameSync(target, old);
  try {
    renameSync(tmp, target);
  } catch (e) {
    renameSync(old, target);
    throw e;
  }
  rmSync(old, { recursive: true, force: true });
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(OPTIONS, HELP, argv, { required: ["model", "out"] });
  if (!parsed) return 0;
  const { values } = parsed;
  if (!values.format) throw new UsageError(`--format ${QUANT_FORMATS.join("|")} is required`);
  if (!existsSync(values.model)) throw new Error(`${values.model}: no such directory`);
  const target = outputTarget(values.model, values.out, values.force);
  const t0 = performance.now();
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${randomTag()}`);
  let report: Awaited<ReturnType<typeof quantizeCheckpoint>>;
  try {
    report = await quantizeCheckpoint(values.model, tmp, values.format, (name, i, n) => {
      process.stderr.write(`[${i + 1}/${n}] ${name}\n`);
    });
    for (const f of COPIED) {
      const src = join(values.model, f);
      if (existsSync(src)) writeFileAtomic(join(tmp, f), readRegularFile(src, MAX_COPIED_BYTES));
    }
    replaceDir(tmp, target);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const mb = (b: number) => `${(b / 1e6).toFixed(b < 1e7 ? 2 : 0)} MB`;
  process.stdout.write(
    `${values.out}: ${report.tensors} tensors, ${report.format}, weights ${mb(report.bytesIn)} → ${mb(report.bytesOut)} (${((report.bytesOut / report.bytesIn) * 100).toFixed(1)}%) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  return 0;
}
