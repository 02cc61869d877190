// `herd data <step> --input ... --output DIR [--param value ...]`: one pipeline step alone on your own
// files (JSONL in, JSONL out), e.g. `herd data dedup --input crawl.jsonl.gz --output out/`. It runs as a
// one-step pipeline, so the run folder has the same layout, report and resume as `herd data run`. Each
// step's options are its parameter schema (kebab-cased) beside the run's own, taken from the pipeline
// file's schema, so a default is written once for files, options and --help.
import { resolve } from "node:path";
import {
  commandHelp,
  HELP_OPTION,
  parseCli,
  problemText,
  type Schema,
  SchemaError,
  UsageError,
} from "../core/schema.js";
import { INPUT_SCHEMA, PIPELINE_SCHEMA, stepSchema, validatePipeline } from "../data/pipeline/config.js";
import { STEPS, stepByCli } from "../data/pipeline/registry.js";
import { RunFolderError, restartRun, runLocal } from "../data/pipeline/run.js";
import type { StepSpec } from "../data/pipeline/types.js";
import { progressPrinter } from "./dataProgress.js";
import { printSummary } from "./dataSummary.js";

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

const USAGE = "usage: herd data <step> --input PATH [--input PATH ...] --output DIR [options]";

export const OPTIONS = HELP_OPTION;

export const HELP = commandHelp(
  USAGE,
  OPTIONS,
  [
    "steps:",
    ...STEPS.map((s) => `  ${s.cli.padEnd(16)}${s.summary}`),
    `  ${"run".padEnd(16)}run a pipeline file (herd data run --help)`,
    `  ${"quality-train".padEnd(16)}train the quality step's classifier (herd data quality-train --help)`,
    "",
    "Run `herd data <step> --help` for the step's options.",
  ].join("\n"),
);

/** The options of `herd data <step>`: the run's, then the step's parameters. */
export function stepOptions(s: StepSpec): Schema {
  const out: Record<string, Schema[string]> = {
    input: {
      type: "strings",
      arg: "PATH",
      doc: "file or folder (JSONL plain/.gz/.zst, Parquet, WARC/WET, text files); repeatable",
    },
    output: {
      type: "string",
      arg: "DIR",
      doc: "run folder: output/ holds the result, report.json the counts",
    },
    format: INPUT_SCHEMA.format,
    tasks: PIPELINE_SCHEMA.tasks,
    workers: PIPELINE_SCHEMA.workers,
    seed: PIPELINE_SCHEMA.seed,
    "keep-removed": stepSchema(s).keepRemoved!,
    restart: {
      type: "boolean",
      default: false,
      doc: "delete what an earlier run wrote in DIR and start over (needed when the options or input files changed since that run started)",
    },
  };
  for (const [k, f] of Object.entries(s.params)) {
    const name = kebab(k);
    if (name in out || name in HELP_OPTION)
      throw new Error(`step ${s.type}: parameter ${k} clashes with --${name}`);
    // Booleans take a value (`--ignore-scheme false`) and lists are comma-separated, as in files.
    out[name] =
      f.type === "boolean" ? { ...f, valued: true } : f.type === "strings" ? { ...f, comma: true } : f;
  }
  return { ...out, ...HELP_OPTION };
}

export function stepHelp(s: StepSpec): string {
  return commandHelp(
    `usage: herd data ${s.cli} --input PATH [--input PATH ...] --output DIR [options]`,
    stepOptions(s),
    `${s.summary}.`,
  );
}

/** Each step's --help and options, for the test that every command's help is its schema's. */
export const SUBCOMMANDS = Object.fromEntries(
  STEPS.map((s) => [s.cli, { HELP: stepHelp(s), OPTIONS: stepOptions(s) }]),
);

export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name) {
    process.stdout.write(`${HELP}\n`);
    return 2;
  }
  if (name.startsWith("-")) {
    const { values } = parseCli(OPTIONS, argv);
    process.stdout.write(`${HELP}\n`);
    return values.help ? 0 : 2;
  }
  const spec = stepByCli(name);
  if (!spec) {
    process.stderr.write(`herd data: unknown step '${name}'\n\n${HELP}\n`);
    return 2;
  }
  try {
    return await runStep(spec, rest);
  } catch (e) {
    if (e instanceof UsageError || e instanceof RunFolderError) {
      process.stderr.write(`herd data ${name}: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

async function runStep(spec: StepSpec, argv: string[]): Promise<number> {
  const { values } = parseCli(stepOptions(spec), argv);
  if (values.help) {
    process.stdout.write(`${stepHelp(spec)}\n`);
    return 0;
  }
  const inputs = (values.input as string[] | undefined) ?? [];
  if (inputs.length === 0) throw new UsageError("--input PATH is required");
  if (!values.output) throw new UsageError("--output DIR is required");
  const step: Record<string, unknown> = { type: spec.type, keepRemoved: values["keep-removed"] };
  for (const k of Object.keys(spec.params)) step[k] = values[kebab(k)];
  const raw = {
    name: spec.cli,
    output: resolve(values.output as string),
    input: { paths: inputs.map((p) => resolve(p)), format: values.format },
    tasks: values.tasks,
    workers: values.workers,
    seed: values.seed,
    steps: [step],
  };
  let config: ReturnType<typeof validatePipeline>;
  try {
    config = validatePipeline(raw);
  } catch (e) {
    if (!(e instanceof SchemaError)) throw e;
    // What the schema could not see alone (cross-field checks) is still named by its option.
    const at = (p: { path: string; why: string }) =>
      p.path.startsWith("steps[0].") ? `--${kebab(p.path.slice(9))} ${p.why}` : problemText("pipeline", p);
    throw new UsageError(e.problems.map(at).join("\n  "));
  }
  if (values.restart) restartRun(config.output);
  const p = progressPrinter();
  const report = await runLocal(config, { onProgress: p.onProgress });
  p.done();
  printSummary(config.output, report);
  return 0;
}
