// `herd pretrain CONFIG`: runs (or resumes, after any interruption) the pre-training a JSON/YAML config
// describes, in runs/<name>/ (the resolved config, metrics.jsonl, checkpoints/, final/). Progress: one
// updating line (step, loss, tokens/s, ETA) on a terminal, a plain line per step otherwise.
import { parseArgs } from "node:util";
import { setBackend } from "../backends/index.js";
import { loadConfig } from "../train/config.js";
import type { StepMetrics } from "../train/metrics.js";
import { pretrain } from "../train/trainer.js";

const HELP = `usage: herd pretrain CONFIG [--backend NAME] [--quiet]

Pre-trains a Llama 3 model as CONFIG (JSON or YAML) describes: stages (initial, long-context,
annealing), token shards (HERDTOKS v1), AdamW (β 0.9/0.95, eps 1e-8, weight decay 0.1 on matrices) with
clipping at 1.0, warm-up + cosine schedule. Writes runs/<name>/: config.json (every default filled in),
metrics.jsonl, checkpoints/step-N/, final/. Running it again resumes from the newest checkpoint.

options:
  --backend NAME   tensor backend (js, wasm; default: the fastest available)
  --quiet          no progress output
  -h, --help       this help`;

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${s.toFixed(0)}s`;
}

export function progressText(m: StepMetrics): string {
  return (
    `step ${m.step}/${m.totalSteps} [${m.stage}] loss ${m.loss.toFixed(4)} lr ${m.lr.toExponential(2)} ` +
    `|g| ${m.gradNorm.toFixed(3)} ${Math.round(m.tokensPerSec)} tok/s ETA ${fmtTime(m.eta)}`
  );
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      backend: { type: "string" },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1) {
    process.stderr.write(`herd pretrain: give exactly one CONFIG file\n\n${HELP}\n`);
    return 2;
  }
  if (values.backend) setBackend(values.backend);
  const cfg = loadConfig(positionals[0]!);
  const tty = process.stdout.isTTY === true;
  const res = await pretrain(cfg, {
    onStep: (m) => {
      if (values.quiet) return;
      if (tty) process.stdout.write(`\r\x1b[K${progressText(m)}`);
      else process.stdout.write(`${progressText(m)}\n`);
    },
    onCheckpoint: (path) => {
      if (!values.quiet && !tty) process.stdout.write(`checkpoint ${path}\n`);
    },
  });
  if (tty && !values.quiet) process.stdout.write("\n");
  if (res.resumedFrom > 0) process.stdout.write(`resumed from step ${res.resumedFrom}\n`);
  process.stdout.write(`done: ${res.runDir}/final\n`);
  res.model.dispose();
  return 0;
}
