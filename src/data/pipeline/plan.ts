// From steps to stages. Per-document steps run inside "shard" stages (one task per input shard); every
// global step ends a shard stage with its collector and continues after its reduce stages with its
// applier at the head of the next shard stage. The run folder's layout follows:
//   pipeline.json  plan.json  inputs.json  work/<stage>/shard-T.jsonl  work/<NN>-<type>/...
//   markers/<stage>/task-T.json  output/shard-T.jsonl  removed/<NN>-<type>/shard-T.jsonl  tokens/  slurm/
//   report.json  report.svg
import { isAbsolute, join, relative, sep } from "node:path";
import { expandInputs, type InputFile, type InputFormat } from "../readers/index.js";
import type { PipelineConfig } from "./config.js";
import { stepByType } from "./registry.js";

export interface ShardStage {
  kind: "shard";
  name: string;
  /** Where documents come from: the input files, or the shard files of an earlier shard stage. */
  source: "input" | string;
  /** The global step whose applier heads this stage, if any. */
  apply: number | null;
  /** Per-document steps, in order. */
  blocks: number[];
  /** The global step whose collector ends this stage (its documents are written to work/<name>/). */
  collect: number | null;
  tasks: number;
}

export interface ReduceStage {
  kind: "reduce";
  name: string;
  step: number;
  reduce: number;
  tasks: number;
}

export type Stage = ShardStage | ReduceStage;

export interface Plan {
  tasks: number;
  inputs: InputFile[];
  /** Input files of each shard task (contiguous runs, so task order is input order). */
  taskInputs: number[][];
  stages: Stage[];
}

export const stepDirName = (i: number, type: string) => `${String(i).padStart(2, "0")}-${type}`;

/** The input files of `c`, less any inside its run folder (a run never reads what it writes). */
export function planInputs(c: PipelineConfig): InputFile[] {
  const inside = (p: string) => {
    const r = relative(c.output, p);
    return c.output !== "" && r !== ".." && !r.startsWith(`..${sep}`) && !isAbsolute(r);
  };
  return expandInputs(c.input.paths, c.input.format as InputFormat | "auto").filter((i) => !inside(i.path));
}

export function makePlan(c: PipelineConfig): Plan {
  const inputs = planInputs(c);
  if (inputs.length === 0) throw new Error("pipeline: the input paths hold no files");
  const tasks = c.tasks === 0 ? Math.min(inputs.length, 1024) : Math.min(c.tasks, inputs.length);
  const taskInputs: number[][] = Array.from({ length: tasks }, () => []);
  for (let i = 0; i < inputs.length; i++) taskInputs[Math.floor((i * tasks) / inputs.length)]!.push(i);
  const stages: Stage[] = [];
  let cur: ShardStage = {
    kind: "shard",
    name: "s00-read",
    source: "input",
    apply: null,
    blocks: [],
    collect: null,
    tasks,
  };
  c.steps.forEach((s, i) => {
    const spec = stepByType(s.type)!;
    if (!spec.global) {
      cur.blocks.push(i);
      return;
    }
    cur.collect = i;
    stages.push(cur);
    spec.global.reduces.forEach((r, j) => {
      stages.push({
        kind: "reduce",
        name: `s${String(stages.length).padStart(2, "0")}-${stepDirName(i, s.type)}-${r.name}`,
        step: i,
        reduce: j,
        tasks: r.tasks(s.params),
      });
    });
    cur = {
      kind: "shard",
      name: `s${String(stages.length).padStart(2, "0")}-after-${stepDirName(i, s.type)}`,
      source: cur.name,
      apply: i,
      blocks: [],
      collect: null,
      tasks,
    };
  });
  stages.push(cur);
  return { tasks, inputs, taskInputs, stages };
}

/** Everything a run writes at the top of its folder (what a restart deletes, and nothing else). */
export const RUN_ENTRIES = [
  "pipeline.json",
  "plan.json",
  "inputs.json",
  "work",
  "markers",
  "output",
  "removed",
  "tokens",
  "slurm",
  "report.json",
  "report.svg",
];

export const paths = {
  pipeline: (run: string) => join(run, "pipeline.json"),
  plan: (run: string) => join(run, "plan.json"),
  inputs: (run: string) => join(run, "inputs.json"),
  stepWork: (run: string, i: number, type: string) => join(run, "work", stepDirName(i, type)),
  shard: (run: string, stage: string, t: number) =>
    join(run, "work", stage, `shard-${String(t).padStart(5, "0")}.jsonl`),
  marker: (run: string, stage: string, t: number) =>
    join(run, "markers", stage, `task-${String(t).padStart(5, "0")}.json`),
  output: (run: string, t: number, suffix: string) =>
    join(run, "output", `shard-${String(t).padStart(5, "0")}.${suffix}`),
  removed: (run: string, i: number, type: string, t: number) =>
    join(run, "removed", stepDirName(i, type), `shard-${String(t).padStart(5, "0")}.jsonl`),
};
