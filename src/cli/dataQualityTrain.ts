// `herd data quality-train --positive P --negative N --output model.bin`: trains the fastText-style
// quality classifier from example documents (any input format; with --per-line every non-blank line of a
// text file is one example), reports held-out accuracy on every tenth example, and writes the model the
// `quality` step loads.
import { parseArgs } from "node:util";
import { IssueLog } from "../data/issues.js";
import { QUALITY_DEFAULTS, QualityModel } from "../data/quality.js";
import { expandInputs, readInputs } from "../data/readers/index.js";

const HELP = `usage: herd data quality-train --positive PATH --negative PATH --output MODEL [options]

  --positive PATH   examples of wanted documents (files or folders; repeatable)
  --negative PATH   examples of unwanted documents (repeatable)
  --output MODEL    model file to write
  --per-line        each non-blank line of each document is one example
  --dim N           embedding size (default ${QUALITY_DEFAULTS.dim})
  --buckets N       hash buckets for word n-grams (default ${QUALITY_DEFAULTS.buckets})
  --word-ngrams N   longest word n-gram (default ${QUALITY_DEFAULTS.wordNgrams})
  --epochs N        passes over the data (default ${QUALITY_DEFAULTS.epochs})
  --lr X            initial learning rate, decaying linearly to 0 (default ${QUALITY_DEFAULTS.lr})
  --seed N          seed (default 0)
  -h, --help        this help`;

async function examples(paths: string[], perLine: boolean, label: 0 | 1, log: IssueLog) {
  const out: { text: string; label: 0 | 1 }[] = [];
  for await (const d of readInputs(expandInputs(paths), { onIssue: log.sink })) {
    if (perLine) for (const l of d.text.split("\n")) l.trim() && out.push({ text: l, label });
    else out.push({ text: d.text, label });
  }
  return out;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      positive: { type: "string", multiple: true },
      negative: { type: "string", multiple: true },
      output: { type: "string" },
      "per-line": { type: "boolean", default: false },
      dim: { type: "string" },
      buckets: { type: "string" },
      "word-ngrams": { type: "string" },
      epochs: { type: "string" },
      lr: { type: "string" },
      seed: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
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
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
  const opts = {
    dim: num(values.dim, QUALITY_DEFAULTS.dim),
    buckets: num(values.buckets, QUALITY_DEFAULTS.buckets),
    wordNgrams: num(values["word-ngrams"], QUALITY_DEFAULTS.wordNgrams),
    epochs: num(values.epochs, QUALITY_DEFAULTS.epochs),
    lr: num(values.lr, QUALITY_DEFAULTS.lr),
    seed: num(values.seed, 0),
  };
  for (const [k, v] of Object.entries(opts))
    if (!Number.isFinite(v) || v < 0 || (k !== "lr" && !Number.isInteger(v))) {
      process.stderr.write(
        `herd data quality-train: --${k} must be a ${k === "lr" ? "number" : "whole number"}\n`,
      );
      return 2;
    }
  const log = new IssueLog();
  const all = [
    ...(await examples(values.positive, values["per-line"]!, 1, log)),
    ...(await examples(values.negative, values["per-line"]!, 0, log)),
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
