// `herd scaling fit RUN...` and `herd scaling predict FLOPS` (spec §6.4): fit the compute-optimal token
// law D*(C) = A·C^α over pre-training run folders written by `herd pretrain` (IsoFLOP parabolas, then a
// power law; optionally drawn as an SVG like the paper's Figures 2–3), or predict the optimal tokens and
// parameters of a budget (default: the paper's figure constants α = 0.537, A = 0.299, and C = 6·N·D).
// Arguments and output only: the points come from src/train/scalingRuns.ts, the fit from scaling.ts.
import {
  type CliValues,
  commandHelp,
  HELP_OPTION,
  parseCli,
  type Schema,
  UsageError,
} from "../core/schema.js";
import { writeFileAtomic } from "../io/atomic.js";
import { fitScalingLaw, PAPER_LAW, predict, type ScalingPoint } from "../train/scaling.js";
import { scalingSvg } from "../train/scalingPlot.js";
import { DivergedRun, type RunPoint, readScalingPoints, runPoint } from "../train/scalingRuns.js";

const positive = { type: "number", min: 0, minExclusive: true } as const;
/** C = K·N·D's K when --flops-per-param-token is not given. */
const K_DEFAULT = 6;

const FIT_USAGE = `usage: herd scaling fit RUN_DIR... [--flops model|6nd] [--tolerance T] [--svg FILE]
       herd scaling fit --points FILE.json [--svg FILE]`;
const FIT_PROSE = `Each RUN_DIR is a herd pretrain run folder (config.json, metrics.jsonl). Its loss is the last
validation loss in the metrics (field valLoss); a run without one falls back to the mean training loss
of its last 10% of steps, and the output says so (skipped steps excluded). A run whose metrics show a
non-finite loss (it diverged) is left out, and the output says so. Runs within --tolerance of each
other's FLOPs form one budget; each budget's loss over log10(tokens) gets a parabola whose minimum is
the compute-optimal D*, and D*(C) = A·C^α is fitted over the budgets.`;

export const FIT_OPTIONS = {
  flops: {
    type: "enum",
    choices: ["model", "6nd"],
    default: "model",
    doc: "a run's compute: model = Σ tokens × (6·N + 12·layers·dim·seqLen) over its steps, the MFU count; 6nd = 6 · all parameters · tokens",
  },
  tolerance: {
    ...positive,
    default: 0.05,
    arg: "T",
    doc: "runs whose FLOPs are this close (relative) form one budget",
  },
  points: {
    type: "string",
    arg: "FILE.json",
    doc: 'a JSON list of {"flops","tokens","loss"} instead of run folders',
  },
  svg: { type: "string", arg: "FILE", doc: "write the IsoFLOP curves and the power law as an SVG" },
  ...HELP_OPTION,
} as const satisfies Schema;

const PREDICT_USAGE = "usage: herd scaling predict FLOPS [--alpha A] [--coef A] [--flops-per-param-token K]";
const PREDICT_PROSE = `Optimal tokens A·C^α and parameters C/(K·tokens); the defaults are the paper's figure legend. At
3.8e25 this gives 16.29T tokens and 388.7B parameters, not the paper's 402B on 16.55T: that pair's
6·N·D is 4.0e25, so the paper paired them with a FLOP formula other than 6·N·D (spec §6.4 [CALC]);
K ≈ 5.80 reproduces 402B.`;

// No defaults in the values: whether one was given decides the note printed about the paper's pair.
export const PREDICT_OPTIONS = {
  alpha: { ...positive, arg: "A", defaultDoc: String(PAPER_LAW.alpha), doc: "exponent α of D*(C) = A·C^α" },
  coef: { ...positive, arg: "A", defaultDoc: String(PAPER_LAW.A), doc: "coefficient A of D*(C) = A·C^α" },
  "flops-per-param-token": { ...positive, arg: "K", defaultDoc: String(K_DEFAULT), doc: "K in C = K·N·D" },
  ...HELP_OPTION,
} as const satisfies Schema;

export const OPTIONS = HELP_OPTION;

export const HELP = commandHelp(
  `${FIT_USAGE}\n${PREDICT_USAGE.replace("usage:", "      ")}`,
  OPTIONS,
  `fit       the compute-optimal token law D*(C) = A·C^α over pre-training run folders (spec §6.4)
predict   optimal tokens and parameters of a FLOP budget

Run \`herd scaling fit --help\` or \`herd scaling predict --help\` for their options.`,
);

export const SUBCOMMANDS = {
  fit: { HELP: commandHelp(FIT_USAGE, FIT_OPTIONS, FIT_PROSE), OPTIONS: FIT_OPTIONS },
  predict: { HELP: commandHelp(PREDICT_USAGE, PREDICT_OPTIONS, PREDICT_PROSE), OPTIONS: PREDICT_OPTIONS },
};

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "fit" && sub !== "predict") {
    const { values } = parseCli(OPTIONS, argv, { positionals: true });
    process.stdout.write(`${HELP}\n`);
    return values.help ? 0 : 2;
  }
  if (sub === "predict") {
    const { values, positionals } = parseCli(PREDICT_OPTIONS, rest, { positionals: true });
    if (values.help) {
      process.stdout.write(`${SUBCOMMANDS.predict.HELP}\n`);
      return 0;
    }
    return runPredict(values, positionals);
  }
  const { values, positionals } = parseCli(FIT_OPTIONS, rest, { positionals: true });
  if (values.help) {
    process.stdout.write(`${SUBCOMMANDS.fit.HELP}\n`);
    return 0;
  }
  return runFit(values, positionals);
}

const out = (l: string) => process.stdout.write(`${l}\n`);

function runPredict(values: CliValues<typeof PREDICT_OPTIONS>, positionals: string[]): number {
  const flops = Number(positionals[0]);
  if (!(flops > 0) || positionals.length !== 1)
    throw new UsageError(`predict: FLOPS '${positionals.join(" ")}' must be one positive number`);
  const law = { alpha: values.alpha ?? PAPER_LAW.alpha, A: values.coef ?? PAPER_LAW.A };
  const k = values["flops-per-param-token"] ?? K_DEFAULT;
  const p = predict(flops, law, k);
  out(
    `budget ${flops.toExponential(2)} FLOPs (α ${law.alpha}, A ${law.A}): ` +
      `${(p.tokens / 1e12).toFixed(2)}T tokens, ${(p.params / 1e9).toFixed(1)}B parameters (C = ${k}·N·D)`,
  );
  if (
    values.alpha === undefined &&
    values.coef === undefined &&
    values["flops-per-param-token"] === undefined
  )
    out(
      "note: the paper reports 402B parameters on 16.55T tokens for 3.8e25 FLOPs; 6·402e9·16.55e12 = 4.0e25, " +
        "so it paired them with a FLOP formula other than 6·N·D (spec §6.4 [CALC]). " +
        "--flops-per-param-token 5.8 reproduces its 402B.",
    );
  return 0;
}

function runFit(values: CliValues<typeof FIT_OPTIONS>, positionals: string[]): number {
  const tolerance = values.tolerance;
  let points: ScalingPoint[];
  if (values.points) {
    points = readScalingPoints(values.points, out);
  } else {
    if (positionals.length === 0) throw new UsageError("fit: give run folders or --points FILE.json");
    const runs: RunPoint[] = [];
    for (const d of positionals) {
      try {
        runs.push(runPoint(d, values.flops));
      } catch (e) {
        if (!(e instanceof DivergedRun)) throw e;
        out(`left out: ${e.message}`);
      }
    }
    for (const r of runs)
      out(
        `${r.dir}: ${r.flops.toExponential(3)} FLOPs, ${r.tokens} tokens, loss ${r.loss.toFixed(4)} (${r.lossFrom})`,
      );
    const fallback = runs.filter((r) => !r.validation).length;
    if (fallback > 0)
      out(
        `note: ${fallback} of ${runs.length} run(s) have no validation loss (valLoss); their training loss stands in, ` +
          "which cannot see overfitting to repeated data and so can favour longer runs than a held-out loss",
      );
    const lengths = new Set(runs.filter((r) => r.valSeqLen !== undefined).map((r) => r.valSeqLen));
    if (lengths.size > 1)
      out(
        `note: the validation losses were measured at different sequence lengths (${[...lengths].join(", ")}); ` +
          "a loss at a longer context is lower for the same model, so compare runs that end at the same length",
      );
    points = runs;
  }
  const { law, optima, skipped } = fitScalingLaw(points, tolerance);
  for (const k of skipped) out(`left out: ${k.reason}`);
  for (const o of optima) {
    const ts = o.points.map((p) => p.tokens);
    const outside = o.tokens < Math.min(...ts) || o.tokens > Math.max(...ts);
    out(
      `budget ${o.flops.toExponential(2)} (${o.points.length} runs): optimal ${o.tokens.toExponential(3)} tokens ` +
        `(loss ${o.loss.toFixed(4)}), ${(o.flops / (6 * o.tokens)).toExponential(3)} parameters at C = 6·N·D` +
        (outside ? " — outside the runs' token range, extrapolated: add runs beyond it" : ""),
    );
  }
  out(
    `D*(C) = ${law.A.toPrecision(4)}·C^${law.alpha.toFixed(4)} (the paper: ${PAPER_LAW.A}·C^${PAPER_LAW.alpha})`,
  );
  if (values.svg) {
    writeFileAtomic(values.svg, scalingSvg(optima, law));
    out(`plot: ${values.svg}`);
  }
  return 0;
}
