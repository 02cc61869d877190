// Pipeline files (JSON or YAML): what to read, which steps to run in order, where the run folder is, how
// many tasks and workers. `loadPipeline` validates with errors that name the field, resolves paths
// against the file's folder and fills every default, so the copy written into the run folder
// (pipeline.json) reproduces the run on its own.
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { INPUT_FORMATS } from "../readers/index.js";
import { ConfigError, checkParams } from "./params.js";
import { STEPS, stepByType } from "./registry.js";
import type { ParamSpec, Params } from "./types.js";

export interface StepConfig {
  type: string;
  /** Write the documents this step drops under removed/<NN>-<type>/. */
  keepRemoved: boolean;
  params: Params;
}

export interface PipelineConfig {
  name: string;
  seed: number;
  input: {
    paths: string[];
    format: string;
    textField: string;
    idField: string;
    urlField: string;
    invalidUtf8: string;
  };
  output: string;
  tasks: number;
  workers: number;
  outputFormat: string;
  outputMaxDocs: number;
  steps: StepConfig[];
}

const TOP: Record<string, ParamSpec> = {
  name: {
    type: "string",
    default: "pipeline",
    doc: "a name for the run: letters, digits, _ . - (it names the Slurm jobs)",
  },
  seed: {
    type: "integer",
    default: 0,
    doc: "seed for every sampling decision (same input + seed → same output)",
  },
  output: { type: "string", default: "", doc: "the run folder (required here or as --output)" },
  tasks: {
    type: "integer",
    default: 0,
    min: 0,
    doc: "shard tasks; 0: one per input file (at most the number of input files)",
  },
  workers: { type: "integer", default: 1, min: 1, doc: "worker threads running tasks at once" },
  outputFormat: { type: "string", default: "jsonl", choices: ["jsonl", "jsonl.gz"], doc: "final shards" },
  outputMaxDocs: {
    type: "integer",
    default: 0,
    min: 0,
    doc: "split each task's output into parts of at most this many documents (0: one file per task)",
  },
};

const INPUT: Record<string, ParamSpec> = {
  paths: { type: "strings", default: [], doc: "files or folders to read (folders recursively, sorted)" },
  format: { type: "string", default: "auto", choices: INPUT_FORMATS, doc: "auto: by extension" },
  textField: { type: "string", default: "text", doc: "JSONL/Parquet field holding the text" },
  idField: { type: "string", default: "id", doc: "field holding the document id" },
  urlField: { type: "string", default: "url", doc: "field holding the URL" },
  invalidUtf8: {
    type: "string",
    default: "replace",
    choices: ["replace", "skip"],
    doc: "invalid UTF-8: keep with U+FFFD, or skip the record",
  },
};

/** Run names go into job names and file names (the Slurm executor's scripts), so they stay plain. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Validates a parsed pipeline; relative paths resolve against `baseDir`. */
export function validatePipeline(raw: unknown, baseDir = process.cwd()): PipelineConfig {
  const problems: string[] = [];
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    throw new ConfigError(["(top): expected an object"]);
  const r = raw as Record<string, unknown>;
  const top = checkParams("(top)", r, TOP, problems, ["input", "steps"]);
  const rawInput = r.input ?? {};
  let input: Params = {};
  if (rawInput === null || typeof rawInput !== "object" || Array.isArray(rawInput))
    problems.push("input: expected an object");
  else input = checkParams("input", rawInput as Record<string, unknown>, INPUT, problems);
  if (typeof top.name === "string" && !NAME.test(top.name))
    problems.push(
      `(top).name: expected a name of letters, digits, '_', '.' and '-' (1 to 64, starting with a letter or digit), got ${JSON.stringify(top.name)}`,
    );
  if (Array.isArray(input.paths) && input.paths.length === 0)
    problems.push("input.paths: give at least one file or folder");
  const steps: StepConfig[] = [];
  if (!Array.isArray(r.steps)) problems.push("steps: expected a list of steps");
  else
    r.steps.forEach((s, i) => {
      const where = `steps[${i}]`;
      if (s === null || typeof s !== "object" || Array.isArray(s)) {
        problems.push(`${where}: expected an object with a "type"`);
        return;
      }
      const st = s as Record<string, unknown>;
      const spec = typeof st.type === "string" ? stepByType(st.type) : undefined;
      if (!spec) {
        problems.push(
          `${where}.type: expected one of ${STEPS.map((x) => x.type).join(", ")}, got ${JSON.stringify(st.type)}`,
        );
        return;
      }
      const keepRemoved = st.keepRemoved ?? spec.keepRemovedDefault ?? false;
      if (typeof keepRemoved !== "boolean") problems.push(`${where}.keepRemoved: expected true or false`);
      const params = checkParams(where, st, spec.params, problems, ["type", "keepRemoved"]);
      steps.push({ type: spec.type, keepRemoved: keepRemoved as boolean, params });
    });
  steps.forEach((s, i) => {
    if (s.type === "tokenize" && i !== steps.length - 1)
      problems.push(`steps[${i}].type: tokenize must be the last step`);
  });
  if (problems.length > 0) throw new ConfigError(problems);
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  input.paths = (input.paths as string[]).map(abs);
  // Path-valued step parameters (models, lists) are resolved too.
  for (const s of steps)
    for (const [k, v] of Object.entries(s.params))
      if (typeof v === "string" && v !== "" && /(Path|File|model)$/.test(k)) s.params[k] = abs(v);
  return {
    ...(top as Omit<PipelineConfig, "input" | "steps">),
    output: top.output ? abs(top.output as string) : "",
    input: input as PipelineConfig["input"],
    steps,
  };
}

/** Reads and validates a .json, .yaml or .yml pipeline file. */
export function loadPipeline(path: string): PipelineConfig {
  const text = readFileSync(path, "utf8");
  let raw: unknown;
  try {
    raw = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new ConfigError([
      `${path}: not valid ${/\.ya?ml$/i.test(path) ? "YAML" : "JSON"}: ${(e as Error).message}`,
    ]);
  }
  return validatePipeline(raw, dirname(resolve(path)));
}

/** The pipeline as written into the run folder: plain JSON, every default present. */
export function pipelineToJson(c: PipelineConfig): unknown {
  return {
    name: c.name,
    seed: c.seed,
    output: c.output,
    tasks: c.tasks,
    workers: c.workers,
    outputFormat: c.outputFormat,
    outputMaxDocs: c.outputMaxDocs,
    input: c.input,
    steps: c.steps.map((s) => ({ type: s.type, keepRemoved: s.keepRemoved, ...s.params })),
  };
}
