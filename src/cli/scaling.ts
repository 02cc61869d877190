// `herd scaling fit RUN...` and `herd scaling predict FLOPS` (spec §6.4): fit the compute-optimal token
// law D*(C) = A·C^α over small pre-training runs (IsoFLOP parabolas, then a power law), or predict the
// optimal tokens and parameters of a budget (default: the paper's α = 0.537, A = 0.299).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { paramCount } from "../model/presets.js";
import { resolveConfig } from "../train/config.js";
import { MetricsLog } from "../train/metrics.js";
import { fitScalingLaw, PAPER_LAW, predict, type ScalingPoint } from "../train/scaling.js";
import { modelConfig } from "../train/trainer.js";

const HELP = `usage: herd scaling fit RUN_DIR... | --points FILE.json
       herd scaling predict FLOPS [--alpha A] [--coef A]

fit       each RUN_DIR is a herd pretrain run folder (config.json, metrics.jsonl): its budget is
          6·params·tokens and its loss the mean of the last 10% of steps; or --points gives a JSON list of
          {"flops", "tokens", "loss"}. Runs of one budget (3 significant digits) form an IsoFLOP curve.
predict   optimal tokens A·C^α and parameters C/(6·tokens); default α 0.537, A 0.299 (spec §6.4).`;

function runPoint(dir: string): ScalingPoint {
  const cfgPath = join(dir, "config.json");
  if (!existsSync(cfgPath)) throw new Error(`${dir}: no config.json (not a herd pretrain run folder)`);
  const cfg = resolveConfig(JSON.parse(readFileSync(cfgPath, "utf8")), cfgPath, dir);
  const m = new MetricsLog(join(dir, "metrics.jsonl")).read();
  if (m.length === 0) throw new Error(`${dir}/metrics.jsonl: no steps`);
  const tail = m.slice(-Math.max(1, Math.floor(m.length / 10)));
  const tokens = m.at(-1)!.tokens;
  return {
    flops: 6 * paramCount(modelConfig(cfg)) * tokens,
    tokens,
    loss: tail.reduce((a, x) => a + x.loss, 0) / tail.length,
  };
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      points: { type: "string" },
      alpha: { type: "string" },
      coef: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help || (sub !== "fit" && sub !== "predict")) {
    process.stdout.write(`${HELP}\n`);
    return values.help ? 0 : 2;
  }
  if (sub === "predict") {
    const flops = Number(positionals[0]);
    if (!(flops > 0))
      throw new Error(`herd scaling predict: FLOPS '${positionals[0] ?? ""}' must be a positive number`);
    const law = {
      alpha: values.alpha ? Number(values.alpha) : PAPER_LAW.alpha,
      A: values.coef ? Number(values.coef) : PAPER_LAW.A,
    };
    const p = predict(flops, law);
    process.stdout.write(
      `budget ${flops.toExponential(2)} FLOPs (α ${law.alpha}, A ${law.A}): ` +
        `${(p.tokens / 1e12).toFixed(2)}T tokens, ${(p.params / 1e9).toFixed(1)}B parameters (C = 6·N·D)\n`,
    );
    return 0;
  }
  const points: ScalingPoint[] = values.points
    ? (JSON.parse(readFileSync(values.points, "utf8")) as ScalingPoint[])
    : positionals.map(runPoint);
  const { law, optima } = fitScalingLaw(points);
  for (const o of optima)
    process.stdout.write(`budget ${o.flops.toExponential(2)}: optimal ${o.tokens.toExponential(3)} tokens\n`);
  process.stdout.write(`D*(C) = ${law.A.toPrecision(4)}·C^${law.alpha.toFixed(4)}\n`);
  return 0;
}
