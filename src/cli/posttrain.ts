// `herd posttrain ROUNDS.yaml [--output RUN]`: the post-training rounds (spec §7.1) of a rounds file
// (src/posttrain/rounds.ts's ROUNDS_SCHEMA): per round SFT → reward model → rejection sampling → DPO →
// averaging, each stage in RUN/round-N/<stage>/, finished stages skipped on a rerun. Argument parsing
// and printing only: a line per stage start, skip and end, and the trainers' progress lines.
import { setBackend } from "../backends/index.js";
import { commandHelp, configTable, HELP_OPTION, parseCli, type Schema, UsageError } from "../core/schema.js";
import { loadRounds, ROUNDS_SCHEMA, type RoundsEvent, runRounds } from "../posttrain/rounds.js";
import { formatDuration } from "./duration.js";
import { postProgressText } from "./postArgs.js";

const USAGE = "usage: herd posttrain ROUNDS.json|yaml [--output RUN] [options]";

const PROSE = `Each round, from the previous round's model (round 1: \`model\`): SFT on data.sft plus the previous
round's rejection-sampled dialogs; a reward model on the pre-trained \`model\` over data.preferences;
rejection sampling of data.prompts from the round's SFT model, scored by each prompt's checker or the
round's reward model; DPO from the SFT model over data.preferences; with average.weights, the DPO model
averaged with the previous round's. \`{round}\` in a data path is the round's number; paths are relative
to the rounds file. Stages write RUN/round-N/{sft,rm,rs,dpo,average}/ (models in final/, the kept
dialogs in rs/final/kept.jsonl) and resume after a kill; a rerun skips finished stages and refuses one
whose settings or inputs changed. RUN/rounds.json is the file with every default filled.

The rounds file:
`;

export const OPTIONS = {
  output: { type: "string", short: "o", arg: "RUN", doc: "the run folder (overrides the file's `output`)" },
  backend: {
    type: "string",
    arg: "NAME",
    defaultDoc: "the fastest available",
    doc: "tensor backend (js, wasm, native)",
  },
  quiet: { type: "boolean", default: false, doc: "stage lines only, no per-step progress" },
  ...HELP_OPTION,
} as const satisfies Schema;

// The table lists the rounds file's own fields and rs's; sft, rm and dpo take their commands' options.
const TABLE: Schema = {
  ...ROUNDS_SCHEMA,
  sft: {
    type: "object",
    default: {},
    doc: "herd sft's options, spelled without --: lr, steps, batch, seq-len, …",
  },
  rm: { type: "object", default: {}, doc: "herd rm's options (not --heldout): lr, steps, batch, …" },
  dpo: { type: "object", default: {}, doc: "herd dpo's options (not --reference): lr, beta, nll-weight, …" },
};

export const HELP = commandHelp(USAGE, OPTIONS, `${PROSE}${configTable(TABLE)}`);

/** The line of a rounds event (null: nothing to print). */
export function eventText(e: RoundsEvent, rounds: number): string | null {
  const at = `round ${e.round}/${rounds} ${e.stage}`;
  if (e.kind === "start") return `${at}: started in ${e.dir}`;
  if (e.kind === "skip") return `${at}: finished before, skipped`;
  if (e.kind === "done") return `${at}: done (${e.note})`;
  if (e.kind === "step") return `${at}: ${postProgressText(e.step)}`;
  const p = e.progress;
  const rate = p.seconds > 0 ? p.samples / p.seconds : 0;
  const left = rate > 0 && p.done > 0 ? ((p.total - p.done) * (p.samples / p.done)) / rate : 0;
  return `${at}: prompt ${p.done}/${p.total} kept ${p.kept} ${rate.toFixed(1)} samples/s ETA ${formatDuration(left)}`;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(OPTIONS, argv, { positionals: true });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("give one rounds file (ROUNDS.json or ROUNDS.yaml)");
  if (values.backend) setBackend(values.backend);
  const cfg = loadRounds(positionals[0]!);
  if (values.output) cfg.output = values.output;
  const tty = process.stderr.isTTY === true;
  let live = false; // a progress line is showing on the terminal
  const final = await runRounds(cfg, {
    onProgress: (e) => {
      const line = eventText(e, cfg.rounds);
      const transient = e.kind === "step" || e.kind === "rs";
      if (!line || (transient && values.quiet)) return;
      if (tty && transient) {
        process.stderr.write(`\r\x1b[K${line}`);
        live = true;
        return;
      }
      if (live) process.stderr.write("\n");
      live = false;
      process.stderr.write(`${line}\n`);
    },
  });
  if (live) process.stderr.write("\n");
  process.stdout.write(`done: ${final}\n`);
  return 0;
}
