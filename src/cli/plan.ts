// `herd plan MODEL --gpus N`: the cluster planner (docs/scale.md, spec §8). With a layout (--tp, --dp, …)
// it prints that layout's memory per GPU and time per step term by term; without one it searches the
// layouts that fit and ranks them by throughput (a table, --svg FILE for a chart, --json). --days D or
// --train-tokens N add the reliability arithmetic of the paper's Table 5 (expected interruptions, the
// checkpoint interval). `herd plan --calibrate` prints the predictions for the paper's three Table 4
// layouts beside its figures, with the calibration constants. The cluster, run and layout options are
// src/scale/config.ts's schemas, kebab-cased; --cluster FILE (JSON/YAML) gives the cluster's fields
// instead, the flags overriding it. Arguments and output only: the model is in src/scale/.
import { existsSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import {
  commandHelp,
  defaultText,
  type Field,
  HELP_OPTION,
  type Schema,
  UsageError,
  validate,
} from "../core/schema.js";
import { writeFileAtomic } from "../io/atomic.js";
import { readRegularFile } from "../io/regular.js";
import type { LlamaConfig } from "../model/config.js";
import { readConfig } from "../model/load.js";
import { preset, presetNames } from "../model/presets.js";
import { calibrate } from "../scale/calibrate.js";
import { layoutName, planSvg } from "../scale/chart.js";
import { CLUSTER_SCHEMA, checkLayout, LAYOUT_SCHEMA, RUN_SCHEMA } from "../scale/config.js";
import { CALIBRATION, GiB } from "../scale/constants.js";
import { checkpointPlan, expectedInterruptions } from "../scale/reliability.js";
import { checkpointBytes, evaluate, type Plan, searchLayouts } from "../scale/search.js";
import { parseCommand } from "./command.js";

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const printsDefault = (d: unknown) => d !== undefined && d !== false;

/** A config schema as CLI options: kebab-cased, defaults only in the help (a flag not given is absent). */
function flags(schema: Schema): Schema {
  const out: Record<string, Field> = {};
  for (const [k, f] of Object.entries(schema)) {
    const { default: d, ...rest } = f as Field & { default?: unknown };
    out[kebab(k)] = {
      ...rest,
      optional: true,
      ...(printsDefault(d) ? { defaultDoc: defaultText(f) } : {}),
    } as Field;
  }
  return out;
}

export const OPTIONS = {
  cluster: {
    type: "string",
    arg: "FILE",
    optional: true,
    doc: "the cluster's fields (below, camelCase) as JSON/YAML",
  },
  ...flags(CLUSTER_SCHEMA),
  ...flags(RUN_SCHEMA),
  ...flags(LAYOUT_SCHEMA),
  top: { type: "integer", min: 1, default: 10, doc: "layouts the search prints (and charts)" },
  svg: { type: "string", arg: "FILE", optional: true, doc: "write the ranked layouts as an SVG chart" },
  json: { type: "boolean", default: false, doc: "print the figures as JSON" },
  days: {
    type: "number",
    min: 0,
    minExclusive: true,
    arg: "D",
    optional: true,
    doc: "expected interruptions (Table 5's rates) and the checkpoint interval over D days",
  },
  "train-tokens": {
    type: "number",
    min: 0,
    minExclusive: true,
    arg: "N",
    optional: true,
    doc: "the same over the days N tokens take at the fastest layout's rate",
  },
  "checkpoint-seconds": {
    type: "number",
    min: 0,
    minExclusive: true,
    arg: "S",
    optional: true,
    defaultDoc: "the bf16 weights and fp32 AdamW state over --storage-bandwidth",
    doc: "checkpoint write time",
  },
  "restart-minutes": {
    type: "number",
    min: 0,
    default: 10,
    arg: "M",
    doc: "minutes an interruption costs besides the lost work (detect, reschedule, reload)",
  },
  calibrate: {
    type: "boolean",
    default: false,
    doc: "the paper's Table 4 layouts, predicted beside published",
  },
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp(
  `usage: herd plan PRESET|DIR --gpus N [--tp N --dp N [--cp N] [--pp N] …] [--svg FILE] [--json]
       herd plan --calibrate [--json]`,
  OPTIONS,
  `PRESET is one of: ${presetNames().join(", ")};
DIR a checkpoint directory. Without --tp or --dp the search ranks every layout that fits by tokens/s.
The defaults are the paper's cluster (H100 80 GB, 8 a server, 400 Gbps a GPU). Calibration constants
(src/scale/constants.ts): ${JSON.stringify(CALIBRATION)}.`,
);

const out = (l: string) => process.stdout.write(`${l}\n`);
/** Three significant figures below 100, whole numbers above (a tiny model's figures stay readable). */
const num = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toPrecision(3));
const gib = (b: number) => num(b / GiB);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** The values of `schema`'s fields from the flags (kebab-cased) over `base`, checked by the schema. */
function fromFlags<S extends Schema>(
  schema: S,
  values: Record<string, unknown>,
  base: Record<string, unknown>,
  source: string,
) {
  const raw: Record<string, unknown> = { ...base };
  for (const k of Object.keys(schema)) if (values[kebab(k)] !== undefined) raw[k] = values[kebab(k)];
  return validate(schema, raw, source);
}

function readModel(what: string): LlamaConfig {
  if (presetNames().includes(what)) return preset(what);
  if (!existsSync(what))
    throw new UsageError(`'${what}' is neither a preset (${presetNames().join(", ")}) nor a directory`);
  return readConfig(what);
}

function clusterFile(path: string | undefined): Record<string, unknown> {
  if (!path) return {};
  const text = readRegularFile(path).toString("utf8");
  let v: unknown;
  try {
    v = path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new Error(
      `${path}: not valid ${path.endsWith(".json") ? "JSON" : "YAML"} (${(e as Error).message})`,
    );
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`${path}: must be an object`);
  return v as Record<string, unknown>;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(OPTIONS, HELP, argv, { positionals: true });
  if (!parsed) return 0;
  const v = parsed.values as Record<string, unknown> & typeof parsed.values;
  if (v.calibrate) return runCalibrate(v.json);
  if (parsed.positionals.length !== 1) throw new UsageError("give one PRESET or DIR (or --calibrate)");
  const model = readModel(parsed.positionals[0]!);
  if (v.gpus === undefined && !v.cluster) throw new UsageError("--gpus N is required (or --cluster FILE)");
  const cluster = fromFlags(CLUSTER_SCHEMA, v, clusterFile(v.cluster), v.cluster ?? "options");
  const runCfg = fromFlags(RUN_SCHEMA, v, {}, "options");
  let plans: Plan[];
  let tooBig = 0;
  if (v.tp !== undefined || v.dp !== undefined) {
    const partial: Record<string, unknown> = { ...v };
    if (partial.dp === undefined && typeof v.tp === "number")
      partial.dp = cluster.gpus / (v.tp * ((v.cp as number) ?? 1) * ((v.pp as number) ?? 1));
    const layout = fromFlags(LAYOUT_SCHEMA, partial, {}, "layout");
    checkLayout(model, cluster, runCfg, layout);
    plans = [evaluate(model, cluster, runCfg, layout)];
  } else {
    ({ plans, tooBig } = searchLayouts(model, cluster, runCfg));
    if (plans.length === 0)
      throw new Error(
        tooBig > 0
          ? `no layout of ${cluster.gpus} GPUs fits in memory (${tooBig} valid layouts, all too big)`
          : `no valid layout of ${cluster.gpus} GPUs: TP·CP·PP·DP = GPUs with DP × micro-batch dividing the ${runCfg.batchTokens / runCfg.seqLen} sequences of the batch (docs/scale.md lists the rules)`,
      );
  }
  const shown = plans.slice(0, v.top);
  const days =
    v.days ?? (v["train-tokens"] ? v["train-tokens"] / plans[0]!.time.tokensPerSecond / 86400 : undefined);
  const ckptSeconds = v["checkpoint-seconds"] ?? checkpointBytes(model) / (cluster.storageBandwidth * 1e9);
  const reliability =
    days === undefined ? undefined : reliabilityOf(cluster.gpus, days, ckptSeconds, v["restart-minutes"]);
  if (v.svg)
    writeFileAtomic(
      v.svg,
      planSvg(shown, `${parsed.positionals[0]} on ${cluster.gpus} GPUs, seq ${runCfg.seqLen}`),
    );
  if (v.json) {
    out(
      JSON.stringify(
        { cluster, run: runCfg, calibration: CALIBRATION, tooBig, plans: shown, reliability },
        null,
        2,
      ),
    );
    return 0;
  }
  if (plans.length === 1 && tooBig === 0 && (v.tp !== undefined || v.dp !== undefined)) printOne(plans[0]!);
  else {
    out(`${plans.length} layouts fit (${tooBig} more are valid but too big); the fastest ${shown.length}:`);
    printTable(shown);
  }
  if (reliability) printReliability(reliability);
  return 0;
}

function printTable(plans: readonly Plan[]): void {
  const head = ["#", "layout", "mem GiB", "step s", "tokens/s", "TFLOPs/GPU", "MFU", "bubble"];
  const rows = plans.map((p, i) => [
    String(i + 1),
    layoutName(p),
    gib(p.memory.total),
    num(p.time.step),
    Math.round(p.time.tokensPerSecond).toLocaleString("en-US"),
    p.time.tflopsPerGpu.toFixed(0),
    pct(p.time.mfu),
    pct(p.time.bubble / p.time.step),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows])
    out(r.map((c, i) => (i === 1 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join("  "));
}

function printOne(p: Plan): void {
  const m = p.memory;
  const t = p.time;
  out(`${layoutName(p)}: ${t.microBatches} micro-batches a step`);
  out(`memory per GPU    ${gib(m.total)} GiB of ${gib(m.limit)} usable${m.fits ? "" : " — DOES NOT FIT"}`);
  out(
    `  weights ${gib(m.weights)} · gradients ${gib(m.gradients)} · optimiser ${gib(m.optimizer)} (${Math.round(m.paramsPerGpu / 1e6)}M parameters a GPU)`,
  );
  out(
    `  activations ${gib(m.activations)} (${m.inFlight.toFixed(2)} micro-batches × ${m.layersFirstStage} layers × ${(m.activationsPerLayer / 2 ** 20).toFixed(1)} MiB) · CP K/V ${gib(m.kvGather)} · logits ${gib(m.logits)}`,
  );
  out(`time per step     ${t.step.toFixed(3)} s`);
  out(
    `  compute ${t.compute.toFixed(3)} · bubble ${t.bubble.toFixed(3)} · TP ${t.tp.toFixed(3)} · CP ${t.cp.toFixed(3)} · PP ${t.pp.toFixed(3)} · DP ${t.dp.toFixed(3)} (exposed)`,
  );
  out(
    `  communication alone: TP ${t.comm.tp.toFixed(3)} · CP ${t.comm.cp.toFixed(3)} · PP ${t.comm.pp.toFixed(3)} · DP ${t.comm.dp.toFixed(3)}`,
  );
  out(
    `throughput        ${Math.round(t.tokensPerSecond).toLocaleString("en-US")} tokens/s · ${t.tflopsPerGpu.toFixed(0)} TFLOPs/GPU · MFU ${pct(t.mfu)}`,
  );
}

function reliabilityOf(gpus: number, days: number, writeSeconds: number, restartMinutes: number) {
  const interruptions = expectedInterruptions(gpus, days);
  return {
    interruptions,
    checkpoint: checkpointPlan(writeSeconds, restartMinutes * 60, interruptions.mtbfHours * 3600),
  };
}

function printReliability(r: ReturnType<typeof reliabilityOf>): void {
  const i = r.interruptions;
  const c = r.checkpoint;
  out(
    `reliability over ${i.days.toFixed(1)} days on ${i.gpus} GPUs (Table 5's rates): ${i.total.toFixed(1)} interruptions (${i.planned.toFixed(1)} planned, ${i.unexpected.toFixed(1)} unexpected), one every ${i.mtbfHours.toFixed(2)} h`,
  );
  out(
    `  ${i.causes
      .slice(0, 4)
      .map((x) => `${x.component} ${x.expected.toFixed(1)}`)
      .join(" · ")} · …`,
  );
  out(
    `checkpoint every ${(c.intervalSeconds / 60).toFixed(1)} min (Young: sqrt(2 · ${c.writeSeconds.toFixed(1)} s write · MTBF)); goodput ${pct(c.goodput)} with ${(c.restartSeconds / 60).toFixed(0)} min a restart`,
  );
}

function runCalibrate(json: boolean): number {
  const rows = calibrate();
  if (json) {
    out(JSON.stringify({ calibration: CALIBRATION, rows }, null, 2));
    return 0;
  }
  out(`calibration constants: ${JSON.stringify(CALIBRATION)}`);
  out(
    "GPUs    layout                      seq      paper TF  predicted TF  error   MFU paper / predicted  mem GiB",
  );
  for (const r of rows) {
    const l = r.layout;
    out(
      `${String(r.gpus).padEnd(7)} ${`TP${l.tp} CP${l.cp} PP${l.pp} DP${l.dp} V${l.virtualStages}`.padEnd(27)} ${String(r.run.seqLen).padEnd(8)} ` +
        `${String(r.tflops).padStart(8)}  ${r.time.tflopsPerGpu.toFixed(1).padStart(12)}  ${`${r.error >= 0 ? "+" : ""}${pct(r.error)}`.padStart(6)}  ` +
        `${pct(r.mfu).padStart(9)} / ${pct(r.time.mfu).padEnd(10)}  ${gib(r.memory.total).padStart(7)}`,
    );
  }
  const t5 = expectedInterruptions(16384, 54);
  out(
    `Table 5 check: 16,384 GPUs × 54 days → ${t5.total.toFixed(0)} interruptions (${t5.planned.toFixed(0)} planned, ${t5.unexpected.toFixed(0)} unexpected), one every ${t5.mtbfHours.toFixed(2)} h`,
  );
  return 0;
}
