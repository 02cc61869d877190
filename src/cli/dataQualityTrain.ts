// `herd data quality-train --positive P --negative N --output model.bin`: trains the fastText-style
// quality classifier from example documents (any input format; with --per-line every non-blank line of a
// text file is one example), reports held-out accuracy on every tenth example, and writes the model the
// `quality` step loads.
import { commandHelp, HELP_OPTION, parseCli, type Schema, UsageError } from "../core/schema.js";
import { IssueLog } from "../data/issues.js";
import { QUALITY_DEFAULTS, QualityModel } from "../data/quality.js";
import { expandInputs, readInputs } from "../data/readers/index.js";

export const OPTIONS = {
  positive: {
    type: "strings",
    arg: "PATH",
    doc: "examples of wanted documents (files or folders; repeatable)",
  },
  negative: { type: "strings", arg: "PATH", doc: "examples of unwanted documents (repeatable)" },
  output: { type: "string", arg: "MODEL", doc: "model file to write" },
  "per-line": {
    type: "boolean",
    default: false,
    doc: "each non-blank line of each document is one example",
  },
  dim: { type: "integer", min: 0, default: QUALITY_DEFAULTS.dim, doc: "embedding size" },
  buckets: {
    type: "integer",
    min: 0,
    default: QUALITY_DEFAULTS.buckets,
    doc: "hash buckets for word n-grams",
  },
  "word-ngrams": {
    type: "integer",
    min: 0,
    default: QUALITY_DEFAULTS.wordNgrams,
    doc: "longest word n-gram",
  },
  epochs: { type: "integer", min: 0, default: QUALITY_DEFAULTS.epochs, doc: "passes over the data" },
  lr: {
    type: "number",
    min: 0,
    default: QUALITY_DEFAULTS.lr,
    doc: "initial learning rate, decaying linearly to 0",
  },
  seed: { type: "integer", min: 0, default: QUALITY_DEFAULTS.seed, doc: "seed" },
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp(
  "usage: herd data quality-train --positive PATH --negative PATH --output MODEL [options]",
  OPTIONS,
);

async function examples(paths: string[], perLine: boolean, label: 0 | 1, log: IssueLog) {
  const out: { text: string; label: 0 | 1 }[] = [];
  for await (const d of readInputs(expandInputs(paths), { onIssue: log.sink })) {
    if (perLine) for (const l of d.text.split("\n")) l.trim() && out.push({ text: l, label });
    else out.push({ text: d.text, label });
  }
  return out;
}

export async function run(argv: string[]): Promise<number> {
  let values: ReturnType<typeof parseCli<typeof OPTIONS>>["values"];
  try {
    values = parseCli(OPTIONS, argv).values;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`herd data quality-train: ${e.message}\n\n${HELP}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (!values.positive || !values.negative || !values.output) {
    process.stderr.write(
      `herd data quality-train: --positive, --negative and --output are required\n\n${HELP}\n`,
    );
    return 2;
  }
  const opts = {
    dim: values.dim,
    buckets: values.buckets,
    wordNgrams: values["word-ngrams"],
    epochs: values.epochs,
    lr: values.lr,
    seed: values.seed,
  };
  const log = new IssueLog();
  const all = [
    ...(await examples(values.positive, values["per-line"], 1, log)),
    ...(await examples(values.negative, values["per-line"], 0, log)),
  ];
  const held = all.filter((_, i) => i % 10 === 9);
  const train = all.filter((_, i) => i % 10 !== 9);
  const { model: trained, loss } = QualityModel.train(train, opts);
  const { model } = QualityModel.train(all, opts);
  const heldAcc = held.length
    ? held.filter((e) => (trained.score(e.text) >= 0.5 ? 1 : 0) === e.label).length / held.length
    : Number.NaN;
  model.save(values.output);
  process.stdout.write(
    `examples: ${all.length} (${all.filter((e) => e.label === 1).length} positive)  train loss ${loss.toFixed(4)}  held-out accuracy ${heldAcc.toFixed(4)} (${held.length})\nmodel: ${values.output} (trained on all examples)\n`,
  );
  if (log.total > 0) process.stderr.write(`input issues: ${log.total}\n`);
  return 0;
}
