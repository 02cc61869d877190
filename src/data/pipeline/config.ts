// Pipeline files (JSON or YAML): what to read, which steps to run in order, where the run folder is, how
// many tasks and workers, declared with src/core/schema.ts (each step's parameters are its StepSpec's
// schema). `loadPipeline` validates with errors that name the file and field, resolves paths against
// the file's folder and fills every default, so the copy written into the run folder
// (pipeline.json) reproduces the run on its own.
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { checkObject, type Problem, type Schema, SchemaError } from "../../core/schema.js";
import { INPUT_FORMATS } from "../readers/index.js";
import { STEPS, stepByType } from "./registry.js";
import type { Params, StepSpec } from "./types.js";

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

/** Run names go into job names and file names (the Slurm executor's scripts), so they stay plain. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** A pipeline file's input: what to read and how. */
export const INPUT_SCHEMA = {
  paths: {
    type: "strings",
    doc: "files or folders to read (folders recursively, sorted)",
    check: (v: string[]) => (v.length === 0 ? "must name at least one file or folder" : null),
  },
  format: { type: "enum", default: "auto", choices: INPUT_FORMATS, doc: "auto: by extension" },
  textField: { type: "string", default: "text", doc: "JSONL/Parquet field holding the text" },
  idField: { type: "string", default: "id", doc: "field holding the document id" },
  urlField: { type: "string", default: "url", doc: "field holding the URL" },
  invalidUtf8: {
    type: "enum",
    default: "replace",
    choices: ["replace", "skip"],
    doc: "invalid UTF-8: keep with U+FFFD, or skip the record",
  },
} as const satisfies Schema;

/** A pipeline file's fields other than `steps` (each step is checked against its own parameters). */
export const PIPELINE_SCHEMA = {
  name: {
    type: "string",
    default: "pipeline",
    doc: "a name for the run: letters, digits, _ . - (it names the Slurm jobs)",
    check: (v: string) =>
      NAME.test(v)
        ? null
        : `must be a name of letters, digits, '_', '.' and '-' (1 to 64, starting with a letter or digit), got ${JSON.stringify(v)}`,
  },
  seed: {
    type: "integer",
    default: 0,
    doc: "seed for every sampling decision (same input + seed → same output)",
  },
  output: {
    type: "string",
    default: "",
    defaultDoc: "unset",
    doc: "the run folder (required here or as --output)",
  },
  tasks: {
    type: "integer",
    default: 0,
    min: 0,
    doc: "shard tasks; 0: one per input file (at most the number of input files)",
  },
  workers: { type: "integer", default: 1, min: 1, doc: "worker threads running tasks at once" },
  outputFormat: { type: "enum", default: "jsonl", choices: ["jsonl", "jsonl.gz"], doc: "final shards" },
  outputMaxDocs: {
    type: "integer",
    default: 0,
    min: 0,
    doc: "split each task's output into parts of at most this many documents (0: one file per task)",
  },
  input: { type: "object", fields: INPUT_SCHEMA, doc: "what to read" },
} as const satisfies Schema;

/** A step's parameters plus `keepRemoved` (whose default is the step's own). */
export function stepSchema(spec: StepSpec<Params>): Schema {
  return {
    keepRemoved: {
      type: "boolean",
      default: spec.keepRemovedDefault ?? false,
      doc: "write the documents this step drops under removed/",
    },
    ...spec.params,
  };
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Validates a parsed pipeline (every problem at once, as a SchemaError naming `source` and each field's
 * path, e.g. `field 'steps[2].bands' must be an integer ≥ 1, got 0`); relative paths resolve against
 * `baseDir`.
 */
export function validatePipeline(raw: unknown, baseDir = process.cwd(), source = "pipeline"): PipelineConfig {
  if (!isObj(raw)) throw new SchemaError(source, [{ path: "", why: "must be an object" }]);
  const problems: Problem[] = [];
  const top = checkObject(PIPELINE_SCHEMA, raw, "", problems, ["steps"]);
  const steps: StepConfig[] = [];
  if (!Array.isArray(raw.steps)) problems.push({ path: "steps", why: "must be a list of steps" });
  else
    raw.steps.forEach((s, i) => {
      const where = `steps[${i}]`;
      if (!isObj(s)) {
        problems.push({ path: where, why: 'must be an object with a "type"' });
        return;
      }
      const spec = typeof s.type === "string" ? stepByType(s.type) : undefined;
      if (!spec) {
        problems.push({
          path: `${where}.type`,
          why: `must be one of ${STEPS.map((x) => x.type).join(", ")}, got ${JSON.stringify(s.type)}`,
        });
        return;
      }
      const { keepRemoved, ...params } = checkObject(stepSchema(spec), s, where, problems, ["type"]);
      steps.push({ type: spec.type, keepRemoved: keepRemoved as boolean, params });
    });
  steps.forEach((s, i) => {
    if (s.type === "tokenize" && i !== steps.length - 1)
      problems.push({ path: `steps[${i}].type`, why: "tokenize must be the last step" });
  });
  if (problems.length > 0) throw new SchemaError(source, problems);
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const input = top.input as PipelineConfig["input"];
  input.paths = input.paths.map(abs);
  // Path-valued step parameters (models, lists) are resolved too.
  for (const s of steps)
    for (const [k, v] of Object.entries(s.params))
      if (typeof v === "string" && v !== "" && /(Path|File|model)$/.test(k)) s.params[k] = abs(v);
  return {
    ...(top as Omit<PipelineConfig, "input" | "steps">),
    output: top.output ? abs(top.output as string) : "",
    input,
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
    const kind = /\.ya?ml$/i.test(path) ? "YAML" : "JSON";
    throw new SchemaError(path, [{ path: "", why: `not valid ${kind}: ${(e as Error).message}` }]);
  }
  return validatePipeline(raw, dirname(resolve(path)), path);
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
