// `herd data <step> --input ... --output DIR [--param value ...]`: one pipeline step alone on your own
// files (JSONL in, JSONL out), e.g. `herd data dedup --input crawl.jsonl.gz --output out/`. It runs as a
// one-step pipeline, so the run folder has the same layout, report and resume as `herd data run`.
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { validatePipeline } from "../data/pipeline/config.js";
import { ConfigError, parseParamText } from "../data/pipeline/params.js";
import { STEPS, stepByCli } from "../data/pipeline/registry.js";
import { RunFolderError, restartRun, runLocal } from "../data/pipeline/run.js";
import type { StepSpec } from "../data/pipeline/types.js";
import { progressPrinter } from "./dataProgress.js";
import { printSummary } from "./dataSummary.js";

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function usage(): string {
  const lines = [
    "usage: herd data <step> --input PATH [--input PATH ...] --output DIR [options]",
    "",
    "steps:",
  ];
  for (const s of STEPS) lines.push(`  ${s.cli.padEnd(16)}${s.summary}`);
  lines.push("  run             run a pipeline file (herd data run --help)");
  lines.push("", "Run `herd data <step> --help` for the step's options.");
  return lines.join("\n");
}

function stepHelp(s: StepSpec): string {
  const lines = [
    `usage: herd data ${s.cli} --input PATH [--input PATH ...] --output DIR [options]`,
    "",
    `${s.summary}.`,
    "",
    "options:",
    "  --input PATH        file or folder (JSONL plain/.gz/.zst, Parquet, WARC/WET, text files); repeatable",
    "  --output DIR        run folder: output/ holds the result, report.json the counts",
    "  --format F          auto (by extension), jsonl, parquet, warc or text",
    "  --tasks N           shard tasks (default: one per input file)",
    "  --workers N         worker threads (default 1)",
    "  --seed N            seed (default 0)",
    `  --keep-removed      write dropped documents under removed/ (default ${s.keepRemovedDefault ? "on" : "off"})`,
    "  --restart           delete what an earlier run wrote in DIR and start over (needed when the",
    "                      options or input files changed since that run started)",
  ];
  for (const [k, p] of Object.entries(s.params)) {
    const opt = `  --${kebab(k)} ${p.type === "boolean" ? "true|false" : p.type.toUpperCase()}`;
    const doc = `${p.doc} (default ${JSON.stringify(p.default)})`;
    lines.push(opt.length < 22 ? opt.padEnd(22) + doc : `${opt}\n${" ".repeat(22)}${doc}`);
  }
  return lines.join("\n");
}

export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h") {
    process.stdout.write(`${usage()}\n`);
    return name ? 0 : 2;
  }
  const spec = stepByCli(name);
  if (!spec) {
    process.stderr.write(`herd data: unknown step '${name}'\n\n${usage()}\n`);
    return 2;
  }
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {
    input: { type: "string", multiple: true },
    output: { type: "string" },
    format: { type: "string" },
    tasks: { type: "string" },
    workers: { type: "string" },
    seed: { type: "string" },
    "keep-removed": { type: "boolean" },
    restart: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  };
  for (const k of Object.keys(spec.params)) options[kebab(k)] = { type: "string" };
  const { values } = parseArgs({ args: rest, options, allowPositionals: false });
  if (values.help) {
    process.stdout.write(`${stepHelp(spec)}\n`);
    return 0;
  }
  const step: Record<string, unknown> = { type: spec.type };
  if (values["keep-removed"] !== undefined) step.keepRemoved = values["keep-removed"];
  for (const [k, p] of Object.entries(spec.params)) {
    const v = values[kebab(k)];
    if (typeof v === "string") step[k] = parseParamText(p, v);
  }
  const raw: Record<string, unknown> = {
    name: spec.cli,
    output: values.output ? resolve(values.output as string) : "",
    input: {
      paths: ((values.input as string[] | undefined) ?? []).map((p) => resolve(p)),
      ...(values.format ? { format: values.format } : {}),
    },
    steps: [step],
  };
  if (values.tasks) raw.tasks = Number(values.tasks);
  if (values.workers) raw.workers = Number(values.workers);
  if (values.seed) raw.seed = Number(values.seed);
  let config: ReturnType<typeof validatePipeline>;
  try {
    config = validatePipeline(raw);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(
        `herd data ${name}: ${e.problems.map((p) => p.replace(/^steps\[0\]\./, "--")).join("\n  ")}\n`,
      );
      return 2;
    }
    throw e;
  }
  if (!config.output) {
    process.stderr.write(`herd data ${name}: --output DIR is required\n`);
    return 2;
  }
  if (values.restart) restartRun(config.output);
  const p = progressPrinter();
  let report: Awaited<ReturnType<typeof runLocal>>;
  try {
    report = await runLocal(config, { onProgress: p.onProgress });
  } catch (e) {
    if (e instanceof RunFolderError) {
      process.stderr.write(`herd data ${name}: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  p.done();
  printSummary(config.output, report);
  return 0;
}
