// `herd pretrain check RUN_DIR`: the long-context checks (short-context loss recovered, needle in a
// haystack) on the weights of an existing run, as the trainer runs them at the end of a long-context
// stage (src/eval/longContext.ts). Exit code 0 when they pass, 1 when they fail, 2 for bad arguments.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { setBackend } from "../backends/index.js";
import { commandHelp, HELP_OPTION, parseCli, type Schema } from "../core/schema.js";
import { checkRun, longContextLine } from "../eval/longContext.js";

const USAGE = "usage: herd pretrain check RUN_DIR [--step N] [--stage NAME] [--backend NAME]";

const PROSE = `Runs the long-context checks of spec §6.2 on a pre-training run's weights: held-out loss at the initial
stage's length against its value at the end of that stage, and needle-in-a-haystack over lengths × depths
(the run's longContext config). Writes RUN_DIR/long-context/check-<stage>-step-N.json and a heat map.`;

export const OPTIONS = {
  step: {
    type: "string",
    arg: "N",
    defaultDoc: "final/, else the newest checkpoint",
    doc: "the checkpoint of step N",
  },
  stage: {
    type: "string",
    arg: "NAME",
    defaultDoc: "the one the weights belong to",
    doc: "the long-context stage to judge",
  },
  backend: { type: "string", arg: "NAME", doc: "tensor backend (js, wasm, native)" },
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp(USAGE, OPTIONS, PROSE);

export async function runCheck(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(OPTIONS, argv, { positionals: true });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1) {
    process.stderr.write(`herd pretrain check: give exactly one RUN_DIR\n\n${HELP}\n`);
    return 2;
  }
  const step = values.step === undefined ? undefined : Number(values.step);
  if (step !== undefined && !(Number.isInteger(step) && step >= 0)) {
    process.stderr.write(`herd pretrain check: --step must be a step number (got ${values.step})\n`);
    return 2;
  }
  if (!existsSync(join(positionals[0]!, "config.json"))) {
    process.stderr.write(`herd pretrain check: ${positionals[0]} is not a run folder (no config.json)\n`);
    return 2;
  }
  if (values.backend) setBackend(values.backend);
  const { report, path, weights } = await checkRun(positionals[0]!, { step, stage: values.stage });
  process.stdout.write(`${weights}\n${longContextLine(report)}\nreport: ${path}\n`);
  return report.passed ? 0 : 1;
}
