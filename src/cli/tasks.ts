// `herd tasks --out DIR`: write the seeded verifiable tasks of the small post-training recipe
// (src/posttrain/tasks/): DIR/{train,heldout}/{sft,prompts,preferences}.jsonl and DIR/tasks.json.
import { commandHelp, HELP_OPTION, type Schema, UsageError } from "../core/schema.js";
import { TASK_KINDS, type TaskKind, writeTaskFiles } from "../posttrain/tasks/index.js";
import { parseCommand } from "./command.js";

export const OPTIONS = {
  out: { type: "string", short: "o", arg: "DIR", doc: "folder to write (train/ and heldout/ inside)" },
  seed: { type: "integer", min: 0, default: 0, arg: "S", doc: "seed of the generator" },
  train: { type: "integer", min: 0, default: 600, arg: "N", doc: "training items (all kinds together)" },
  heldout: {
    type: "integer",
    min: 0,
    default: 150,
    arg: "M",
    doc: "held-out items, never sharing a prompt with training",
  },
  kinds: {
    type: "strings",
    comma: true,
    default: [...TASK_KINDS],
    arg: "LIST",
    doc: "comma-separated kinds: arithmetic (GSM8K-format word problems), instructions (IFEval-like constraints), facts (phrases of the pre-training corpus)",
  },
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp(
  "usage: herd tasks --out DIR [--seed S] [--train N] [--heldout M] [--kinds LIST]",
  OPTIONS,
  "Each split gets sft.jsonl (`messages` dialogs with the correct answer), prompts.jsonl (the prompt and what its checker needs, for `herd rs`) and preferences.jsonl (`prompt`/`chosen`/`rejected`: correct against incorrect).",
);

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(OPTIONS, HELP, argv, { required: ["out"] });
  if (!parsed) return 0;
  const { values } = parsed;
  const kinds = values.kinds.map((k) => k.trim());
  const bad = kinds.find((k) => !TASK_KINDS.includes(k as TaskKind));
  if (bad !== undefined || kinds.length === 0)
    throw new UsageError(`--kinds: '${bad ?? ""}' is not a kind (have: ${TASK_KINDS.join(", ")})`);
  const s = writeTaskFiles(values.out, {
    seed: values.seed,
    train: values.train,
    heldout: values.heldout,
    kinds: kinds as TaskKind[],
  });
  process.stderr.write(
    `${values.out}: ${s.train.length} training and ${s.heldout.length} held-out tasks (${kinds.join(", ")})\n`,
  );
  return 0;
}
