// `herd pretrain CONFIG`: runs (or resumes, after any interruption) the pre-training a JSON/YAML config
// describes, in runs/<name>/ (the resolved config, metrics.jsonl, checkpoints/, final/). Progress: one
// updating line (step, loss, tokens/s, MFU, ETA) on a terminal, a plain line per step otherwise. The
// evaluation (held-out loss, long-context checks) is eval's pretrainEvaluator, handed to the trainer here;
// `--demo` is the recipe's (src/recipe/demo.ts). Argument parsing and printing only.

import { setBackend } from "../backends/index.js";
import { commandHelp, HELP_OPTION, parseCli, type Schema } from "../core/schema.js";
import { pretrainEvaluator } from "../eval/pretrainEvaluator.js";
import { demoSamples, prepareDemo } from "../recipe/demo.js";
import { loadConfig } from "../train/config.js";
import type { StepMetrics } from "../train/metrics.js";
import type { RunPeak } from "../train/mfu.js";
import { parseStepsScale, scaleSteps } from "../train/stepsScale.js";
import { pretrain } from "../train/trainer.js";
import { formatDuration } from "./duration.js";
import * as check from "./pretrainCheck.js";

const USAGE = `usage: herd pretrain CONFIG [--steps-scale F] [--backend NAME] [--quiet] [--allow-config-change]
       herd pretrain --demo [--runs DIR] [--steps-scale F]
       herd pretrain check RUN_DIR [--step N]   (long-context checks on a run's weights)`;

const PROSE = `Pre-trains a Llama 3 model as CONFIG (JSON or YAML) describes: stages (initial, long-context,
annealing), token shards (HERDTOKS v1), AdamW (β 0.9/0.95, eps 1e-8, weight decay 0.1 on matrices) with
clipping at 1.0, warm-up + cosine schedule. Writes runs/<name>/: config.json (every default filled in),
metrics.jsonl (loss, lr, grad norm, tokens, tokens/s, MFU per step), checkpoints/step-N/, final/ (the
Polyak average of the annealing stage). Running it again resumes from the newest checkpoint. MFU is
model FLOPs (6·N + 12·layers·dim·seqLen per token, PaLM's count) over the measured f32 peak of the
cores used (clock × flops/cycle of AVX-512 / AVX2 / 128-bit SIMD × threads), cached in peak.json.
After the first steps it prints an estimate of the whole run's time on this machine.

Relative paths inside CONFIG resolve against CONFIG's folder; relative paths given on the command line
(CONFIG itself, --runs) against the current directory.`;

export const OPTIONS = {
  demo: {
    type: "boolean",
    default: false,
    doc: "the default run (npm start): BPE vocabulary and shards from assets/pretrain-corpus, the small preset through three stages (~10 min on 2 cores), then samples",
  },
  runs: {
    type: "string",
    default: "runs",
    defaultDoc: "runs, in the current directory",
    arg: "DIR",
    doc: "where --demo puts its run",
  },
  "steps-scale": {
    type: "string",
    default: "1",
    arg: "F",
    doc: "multiply every stage's steps, the warm-up and the ramp thresholds by F (e.g. 0.02 for a one-minute try of the whole recipe); a resume must pass the same F",
  },
  backend: {
    type: "string",
    arg: "NAME",
    defaultDoc: "the fastest available",
    doc: "tensor backend (js, wasm, native)",
  },
  quiet: { type: "boolean", default: false, doc: "no progress output" },
  "allow-config-change": {
    type: "boolean",
    default: false,
    doc: "resume although CONFIG differs from the run's config.json (refused otherwise, listing each change; the model's dimensions can never change)",
  },
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp(USAGE, OPTIONS, PROSE);

export const SUBCOMMANDS = { check: { HELP: check.HELP, OPTIONS: check.OPTIONS } };

export function progressText(m: StepMetrics): string {
  const flag = m.skipped ? " (non-finite: skipped, no update)" : m.diverged ? " (non-finite: stopped)" : "";
  return (
    `step ${m.step}/${m.totalSteps} [${m.stage}]${flag} loss ${m.loss.toFixed(4)} lr ${m.lr.toExponential(2)} ` +
    `|g| ${m.gradNorm.toFixed(3)} ${Math.round(m.tokensPerSec)} tok/s MFU ${(100 * m.mfu).toFixed(1)}% ` +
    `ETA ${formatDuration(m.eta)}`
  );
}

export function peakText(p: RunPeak): string {
  return (
    `MFU against ${(p.flops / 1e9).toFixed(1)} GFLOP/s f32 peak: ${p.backend} on ${p.threads} thread(s) × ` +
    `${(p.clockHz / 1e9).toFixed(2)} GHz (measured) × ${p.flopsPerCycle} flops/cycle (${p.isa})`
  );
}

/**
 * The estimate printed once early in a run: after ESTIMATE_STEPS steps of this process (or 15 s, whichever
 * comes first, but never on the last step), the whole run's expected duration on this machine from what
 * was just measured here — the figures in the README came from other machines.
 */
export class RunEstimate {
  static readonly STEPS = 5;
  private readonly t0 = performance.now();
  private steps = 0;
  private done = false;
  line(m: StepMetrics): string | null {
    this.steps++;
    if (this.done || m.step >= m.totalSteps) return null;
    const secs = (performance.now() - this.t0) / 1000;
    if (this.steps < RunEstimate.STEPS && secs < 15) return null;
    this.done = true;
    return (
      `estimate on this machine: about ${formatDuration(m.eta)} for the ${m.totalSteps - m.step} steps left ` +
      `(measured here over ${this.steps} steps: ${Math.round(m.tokensPerSec)} tokens/s, ` +
      `MFU ${(100 * m.mfu).toFixed(1)}%)`
    );
  }
}

export async function run(argv: string[]): Promise<number> {
  if (argv[0] === "check") return check.runCheck(argv.slice(1));
  const { values, positionals } = parseCli(OPTIONS, argv, { positionals: true });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (values.demo ? positionals.length !== 0 : positionals.length !== 1) {
    process.stderr.write(`herd pretrain: give exactly one CONFIG file\n\n${HELP}\n`);
    return 2;
  }
  const stepsScale = parseStepsScale(values["steps-scale"]);
  if (values.backend) setBackend(values.backend);
  const demo = values.demo ? prepareDemo(values.runs, (l) => process.stdout.write(`${l}\n`)) : null;
  const cfg = scaleSteps(demo ? demo.config : loadConfig(positionals[0]!), stepsScale);
  const tty = process.stdout.isTTY === true;
  const estimate = new RunEstimate();
  const res = await pretrain(cfg, {
    allowConfigChange: values["allow-config-change"],
    onStart: (peak) => {
      if (!values.quiet) process.stdout.write(`${peakText(peak)}\n`);
    },
    onStep: (m) => {
      if (values.quiet) return;
      const line = estimate.line(m);
      if (line) process.stdout.write(`${tty ? "\r\x1b[K" : ""}${line}\n`);
      if (tty) process.stdout.write(`\r\x1b[K${progressText(m)}`);
      else process.stdout.write(`${progressText(m)}\n`);
    },
    evaluator: pretrainEvaluator({
      onLongContext: (_r, line) => {
        if (!values.quiet) process.stdout.write(`${tty ? "\r\x1b[K" : ""}${line}\n`);
      },
    }),
    onCheckpoint: (path) => {
      if (!values.quiet && !tty) process.stdout.write(`checkpoint ${path}\n`);
    },
  });
  if (tty && !values.quiet) process.stdout.write("\n");
  if (res.resumedFrom > 0) process.stdout.write(`resumed from step ${res.resumedFrom}\n`);
  process.stdout.write(`done: ${res.runDir}/final (loss curve: ${res.runDir}/loss.svg)\n`);
  res.model.dispose();
  if (demo)
    await demoSamples(`${res.runDir}/final`, demo.tokenizer, (s, i) =>
      process.stdout.write(`\n--- sample ${i + 1} ---\n${s.prompt}${s.text}\n`),
    );
  return 0;
}
