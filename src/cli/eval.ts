// `herd eval --model DIR --tasks mmlu,arc_challenge,gsm8k`: score a checkpoint on public benchmarks the
// way lm-evaluation-harness does (src/eval/harness.ts, task names as the harness's), from the data sets'
// own files under --data-dir. Writes results.json (the harness's shape) and, with --log-samples,
// samples_<task>.jsonl into --output; prints the harness's summary table. A progress line with items/s
// and ETA goes to stderr.

import { existsSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { packageRoot } from "../core/paths.js";
import { commandHelp, HELP_OPTION, type Schema, UsageError } from "../core/schema.js";
import { evaluate } from "../eval/harness.js";
import { resolveTasks, TASKS } from "../eval/registry.js";
import { resultsJson, summaryTable, writeRun } from "../eval/report.js";
import { codecFor } from "../generate/codec.js";
import { writeFileAtomic } from "../io/atomic.js";
import { loadModel } from "../model/load.js";
import { parseCommand } from "./command.js";
import { formatDuration } from "./duration.js";

export const OPTIONS = {
  model: { type: "string", short: "m", arg: "DIR", doc: "checkpoint directory (HF, Meta, or quantised)" },
  tasks: {
    type: "strings",
    comma: true,
    arg: "A,B",
    doc: `tasks, comma-separated: ${TASKS.map((t) => t.name).join(", ")}`,
  },
  limit: { type: "integer", min: 1, optional: true, arg: "N", doc: "documents per subtask at most" },
  shots: {
    type: "integer",
    min: 0,
    optional: true,
    arg: "K",
    doc: "few-shot examples (default: each task's)",
  },
  samples: {
    type: "integer",
    min: 1,
    optional: true,
    arg: "N",
    doc: "completions per HumanEval problem (1: greedy pass@1; more: sampled, pass@10/@100)",
  },
  batch: { type: "integer", min: 1, default: 1, arg: "B", doc: "sequences per forward on the naive path" },
  naive: {
    type: "boolean",
    default: false,
    doc: "compute every request from scratch, as the harness does (each choice its own full sequence, each completion its own generation) instead of sharing prefixes",
  },
  chat: {
    type: "boolean",
    default: false,
    doc: "instruct model: prompts in the Llama 3.1 chat format (few-shot examples as turns)",
  },
  output: {
    type: "string",
    short: "o",
    arg: "DIR",
    optional: true,
    doc: "where results.json goes",
    defaultDoc: "runs/eval-<model folder name>",
  },
  "data-dir": {
    type: "string",
    arg: "DIR",
    optional: true,
    doc: "the evaluation data sets in their own formats",
    defaultDoc: "../shared/data/eval when present",
  },
  text: {
    type: "string",
    arg: "FILE",
    optional: true,
    doc: "held-out text for the perplexity and niah tasks",
  },
  "log-samples": {
    type: "boolean",
    default: false,
    doc: "write every sample (prompt, output, answer, score)",
  },
  tokenizer: {
    type: "string",
    arg: "PATH",
    optional: true,
    doc: "a vocab.json piece list or a tiktoken ranks file",
  },
  f32: { type: "boolean", default: false, doc: "widen bf16 weights to f32" },
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp(
  "usage: herd eval --model DIR --tasks A,B [options]",
  OPTIONS,
  "Runs side by side: herd eval compare RUN... (herd eval compare --help).",
);

function defaultDataDir(): string | undefined {
  for (const d of [
    resolve("..", "shared", "data", "eval"),
    join(packageRoot(), "..", "shared", "data", "eval"),
  ])
    if (existsSync(d)) return d;
  return undefined;
}

/** "[eval] task 3/10 · 45/120 items · 2.31 items/s · ETA 32s" (a terminal line, else one every 5 s). */
function progress(): (p: {
  task: string;
  done: number;
  total: number;
  allDone: number;
  allTotal: number;
}) => void {
  const t0 = performance.now();
  let last = 0;
  const tty = process.stderr.isTTY;
  return (p) => {
    const now = performance.now();
    const secs = (now - t0) / 1000;
    const rate = p.allDone / Math.max(secs, 1e-9);
    const line = `[eval] ${p.task} ${p.done}/${p.total} · ${p.allDone}/${p.allTotal} items · ${rate.toFixed(2)} items/s · ETA ${formatDuration((p.allTotal - p.allDone) / rate)}`;
    if (tty) process.stderr.write(`\r${line}\x1b[K${p.allDone === p.allTotal ? "\n" : ""}`);
    else if (now - last > 5000 || p.allDone === p.allTotal) {
      process.stderr.write(`${line}\n`);
      last = now;
    }
  };
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(OPTIONS, HELP, argv);
  if (!parsed) return 0;
  const { values } = parsed;
  if (!values.model) throw new UsageError("--model DIR is required");
  if (!values.tasks || values.tasks.length === 0) throw new UsageError("--tasks A,B is required");
  let tasks: ReturnType<typeof resolveTasks>;
  try {
    tasks = resolveTasks(values.tasks);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const dataDir = values["data-dir"] ?? defaultDataDir();
  if (!dataDir && tasks.some((t) => !("custom" in t)))
    throw new UsageError("--data-dir DIR is required (no ../shared/data/eval here)");
  if (dataDir && !existsSync(dataDir)) throw new Error(`${dataDir}: data directory is missing`);
  const model = await loadModel(values.model, { dtype: values.f32 ? "f32" : "keep" });
  try {
    const codec = codecFor(values.model, model.config.vocabSize, values.tokenizer);
    if (!codec?.encode)
      throw new UsageError(`${values.model}: no tokenizer that can encode text; pass --tokenizer PATH`);
    const t0 = performance.now();
    const { results, files } = await evaluate(model, tasks, {
      dataDir: dataDir ?? "",
      ...(values.limit === undefined ? {} : { limit: values.limit }),
      ...(values.shots === undefined ? {} : { shots: values.shots }),
      ...(values.samples === undefined ? {} : { samples: values.samples }),
      ...(values.text === undefined ? {} : { textFile: values.text }),
      chat: values.chat,
      codec,
      path: values.naive ? "naive" : "shared",
      batch: values.batch,
      logSamples: values["log-samples"],
      onProgress: progress(),
    });
    const seconds = (performance.now() - t0) / 1000;
    const out = values.output ?? join("runs", `eval-${basename(resolve(values.model))}`);
    const json = resultsJson(results, {
      model: values.model,
      dtype: model.dtype,
      chat: values.chat,
      limit: values.limit ?? null,
      batch: values.batch,
      seconds,
    });
    const path = writeRun(out, json, results.samples);
    for (const [name, body] of Object.entries(files)) writeFileAtomic(join(out, name), body);
    process.stdout.write(`${summaryTable(results)}\n\n${path} (${formatDuration(seconds)})\n`);
  } finally {
    model.dispose();
  }
  return 0;
}
