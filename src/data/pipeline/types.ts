// The shape of a pipeline step: its parameters (a src/core/schema.ts schema, each with a default: the same
// table validates pipeline files and builds each `herd data <step>` command's options and --help) and
// how it runs. A per-document step gives a DocBlock. A global step (dedup, corpus statistics, mixing) runs in three parts with files as
// the hand-off: `collect` sees every document of a shard task, `reduces` combine what all tasks wrote
// (each reduce a list of independent tasks), and `apply` decides per document in the next shard stage.
import type { Schema } from "../../core/schema.js";
import type { DocBlock } from "../block.js";
import type { Document } from "../document.js";

export type Params = Record<string, unknown>;

export interface TaskContext {
  /** The run folder. */
  runDir: string;
  /** This shard task's index and the number of shard tasks. */
  task: number;
  tasks: number;
  /** The pipeline's seed. */
  seed: number;
  /** A folder of this step's own (`<run>/work/<NN>-<type>/`), shared by all tasks of the step. */
  workDir: string;
}

export interface Collector {
  add(doc: Document): void | Promise<void>;
  finish(): Promise<void>;
}

export interface ReduceSpec<P = Params> {
  name: string;
  tasks(p: P): number;
  run(p: P, ctx: TaskContext & { reduceTask: number }): Promise<void>;
}

export interface StepSpec<P = Params> {
  /** The name in pipeline files, e.g. "minhashDedup". */
  type: string;
  /** The command, e.g. "dedup" for `herd data dedup`. */
  cli: string;
  summary: string;
  /** Every parameter with its default (src/core/schema.ts fields). */
  params: Schema;
  /** Whether dropped documents are written under removed/<step>/ unless the step says otherwise. */
  keepRemovedDefault?: boolean;
  block?: (p: P, ctx: TaskContext) => DocBlock | Promise<DocBlock>;
  global?: {
    collect: (p: P, ctx: TaskContext) => Collector | Promise<Collector>;
    reduces: ReduceSpec<P>[];
    apply: (p: P, ctx: TaskContext) => DocBlock | Promise<DocBlock>;
  };
}

/** Erases a step's parameter type for the registry. */
export function defineStep<P>(spec: StepSpec<P>): StepSpec<Params> {
  return spec as unknown as StepSpec<Params>;
}
