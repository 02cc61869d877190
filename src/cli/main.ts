#!/usr/bin/env node
// herd's command-line entry point: finds the subcommand and hands it the remaining arguments.
// Each command lives in its own file under src/cli/ and exports `run(argv: string[]): Promise<number>`
// (the exit code). This file holds no logic of its own beyond dispatch and error reporting; it checks the
// HERD_* knobs (src/core/knobs.ts) before a command loads, so a bad value fails before any work. A
// UsageError escaping a command (a bad or missing option) prints its message and the command's --help,
// and exits 2; commands never catch it themselves (src/cli/command.ts parses their options). Every command module also exports its
// option schema and --help (OPTIONS, HELP: src/core/schema.ts's commandHelp; SUBCOMMANDS for the words
// after it, e.g. `scaling fit`), which test/cli/help.test.ts checks against what `--help` prints, for
// every command of the table below.
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { checkKnobs, knob } from "../core/knobs.js";
import { type Schema, UsageError } from "../core/schema.js";

/** What a command module's --help is made of (SUBCOMMANDS: `herd <command> <word> --help`). */
export interface CommandHelp {
  HELP: string;
  OPTIONS: Schema;
  SUBCOMMANDS?: Record<string, { HELP: string; OPTIONS: Schema }>;
}

interface Command {
  summary: string;
  load: () => Promise<{ run: (argv: string[]) => Promise<number> } & CommandHelp>;
}

export const commands: Record<string, Command> = {
  info: { summary: "show the tensor backends and this machine", load: () => import("./info.js") },
  tokenize: {
    summary: "encode, decode or count tokens (Llama 3 tokenizer)",
    load: () => import("./tokenize.js"),
  },
  "tokenizer train": {
    summary: "learn a BPE vocabulary from text/JSONL files",
    load: () => import("./tokenizerTrain.js"),
  },
  "model info": {
    summary: "parameters, FLOPs/token, KV cache and memory of a preset or checkpoint",
    load: () => import("./modelInfo.js"),
  },
  generate: { summary: "continue a prompt with a Llama model", load: () => import("./generate.js") },
  chat: { summary: "interactive chat with a Llama 3 instruct model", load: () => import("./chat.js") },
  serve: {
    summary: "OpenAI-compatible HTTP server with continuous batching (docs/serve.md)",
    load: () => import("./serve.js"),
  },
  quantize: {
    summary: "weight-only int8/4-bit quantisation of a checkpoint (q8_0, q4_0)",
    load: () => import("./quantize.js"),
  },
  "lora merge": {
    summary: "fold a LoRA adapter (PEFT layout) into its base checkpoint",
    load: () => import("./lora.js"),
  },
  export: {
    summary: "write a model as a GGUF file for llama.cpp (f32, f16, bf16, q8_0, q4_0)",
    load: () => import("./export.js"),
  },
  perplexity: {
    summary: "perplexity of one or more models on held-out text",
    load: () => import("./perplexity.js"),
  },
  eval: {
    summary: "score a model on MMLU, ARC, GSM8K, MGSM, … as lm-evaluation-harness does",
    load: () => import("./eval.js"),
  },
  "eval compare": {
    summary: "several evaluation runs side by side (Markdown table, SVG chart)",
    load: () => import("./evalCompare.js"),
  },
  data: {
    summary: "run one data-pipeline step on your files (herd data --help)",
    load: () => import("./data.js"),
  },
  "data quality-train": {
    summary: "train the data pipeline's quality classifier from example files",
    load: () => import("./dataQualityTrain.js"),
  },
  "data run": {
    summary: "run a data pipeline file (JSON/YAML), locally or on Slurm",
    load: () => import("./dataRun.js"),
  },
  pretrain: {
    summary: "pre-train a Llama 3 model from a JSON/YAML config (resumes after interruptions)",
    load: () => import("./pretrain.js"),
  },
  sft: {
    summary: "supervised fine-tuning on chat or pre-tokenised JSONL (assistant tokens only)",
    load: () => import("./sft.js"),
  },
  rm: {
    summary: "train a reward model on preference pairs (scalar head, pairwise loss, held-out accuracy)",
    load: () => import("./rm.js"),
  },
  dpo: {
    summary: "direct preference optimisation (β 0.1, formatting tokens masked, + 0.2·NLL)",
    load: () => import("./dpo.js"),
  },
  average: {
    summary: "average checkpoints of one architecture (uniform or --weights)",
    load: () => import("./average.js"),
  },
  tasks: {
    summary: "write seeded verifiable tasks for post-training (SFT, prompts with checkers, preferences)",
    load: () => import("./tasks.js"),
  },
  rs: {
    summary: "rejection sampling: K completions per prompt, the best kept as SFT data",
    load: () => import("./rs.js"),
  },
  posttrain: {
    summary: "the post-training rounds of a ROUNDS.yaml: SFT → RM → rejection sampling → DPO → average",
    load: () => import("./posttrain.js"),
  },
  plan: {
    summary:
      "plan a cluster run: 4D layouts by memory and throughput, calibration, reliability (docs/scale.md)",
    load: () => import("./plan.js"),
  },
  scaling: {
    summary: "fit or predict compute-optimal tokens and parameters (herd scaling fit|predict)",
    load: () => import("./scaling.js"),
  },
};

function usage(): string {
  const lines = ["usage: herd <command> [options]", "", "commands:"];
  const width = Math.max(...Object.keys(commands).map((n) => n.length)) + 2;
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(width)}${c.summary}`);
  lines.push("", "Run `herd <command> --help` for a command's options.");
  return lines.join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${usage()}\n`);
    return name ? 0 : 1;
  }
  // Two-word commands ("tokenizer train") are registered with a space.
  const two = rest.length > 0 ? `${name} ${rest[0]}` : "";
  const key = two && commands[two] ? two : name;
  const cmd = commands[key];
  if (!cmd) {
    process.stderr.write(`herd: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  running = key;
  checkKnobs();
  const mod = await cmd.load();
  const args = key === two ? rest.slice(1) : rest;
  runningHelp = (args[0] !== undefined && mod.SUBCOMMANDS?.[args[0]]?.HELP) || mod.HELP;
  return mod.run(args);
}

/** HERD_DEBUG, false where it is itself the bad value being reported. */
function debug(): boolean {
  try {
    return knob("HERD_DEBUG");
  } catch {
    return false;
  }
}

/** The command being run, so an error that escapes it is reported under its name. */
let running = "";
/** Its --help (a subcommand's, for `herd scaling fit`), printed after a usage error. */
let runningHelp = "";

/** Whether this file is the program (`herd`, `node main.js`) rather than a module a test imports. */
function isProgram(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  const self = realpathSync(fileURLToPath(import.meta.url));
  for (const p of [argv1, `${argv1}.js`])
    try {
      if (realpathSync(p) === self) return true;
    } catch {
      // not a file: try the next spelling
    }
  return false;
}

if (isProgram())
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      const msg = err instanceof Error ? (debug() ? (err.stack ?? err.message) : err.message) : String(err);
      const usage = err instanceof UsageError;
      process.stderr.write(
        `herd${running ? ` ${running}` : ""}: ${msg}\n${usage && runningHelp ? `\n${runningHelp}\n` : ""}`,
      );
      process.exitCode = usage ? 2 : 1;
    },
  );
