// Running a pipeline. `prepareRun` makes (or re-opens) the run folder: it writes pipeline.json with every
// default, plan.json with the input files per task and inputs.json with their identity, and refuses a
// folder that holds a different pipeline or whose inputs changed since it started (`restartRun` clears
// it). `runLocal` runs the stages in order, each stage's tasks on a pool of worker threads, skipping
// tasks whose markers exist (resume), then writes the report. `runStageTasks` runs the share of one
// stage's tasks picked by TASK_INDEX/TASK_COUNT in this process (what a cluster array task does).
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { readJson, writeJson } from "../files.js";
import { type PipelineConfig, pipelineToJson, validatePipeline } from "./config.js";
import { type InputIdentity, identify, inputChanges } from "./inputs.js";
import { makePlan, type Plan, paths, planInputs, RUN_ENTRIES } from "./plan.js";
import { type Report, writeReport } from "./report.js";
import { runTask, type TaskStats } from "./task.js";

export interface RunProgress {
  stage: string;
  stageIndex: number;
  stages: number;
  tasksDone: number;
  tasks: number;
  /** Documents and bytes read so far in this stage. */
  docs: number;
  bytes: number;
}

export interface RunOptions {
  onProgress?: (p: RunProgress) => void;
  /** Overrides the pipeline's worker count. */
  workers?: number;
}

/** A run folder that cannot be resumed for this pipeline (another pipeline, or changed inputs). */
export class RunFolderError extends Error {}

const startOver = "run again with --restart to start over in it, or use another output folder";

/** Refuses to resume when the input files are not the ones the run started on. */
function checkInputs(run: string, c: PipelineConfig, plan: Plan): void {
  const now = c.input.paths.every((p) => existsSync(p))
    ? planInputs(c).map((i) => i.path)
    : plan.inputs.map((i) => i.path).filter((p) => existsSync(p));
  if (!existsSync(paths.inputs(run))) {
    // A run folder from before inputs were recorded: record them now, for the resumes after this one.
    writeJson(
      paths.inputs(run),
      plan.inputs.map((i) => identify(i.path)),
    );
    return;
  }
  const changes = inputChanges(readJson<InputIdentity[]>(paths.inputs(run)), now);
  if (changes.length === 0) return;
  const more = changes.length > 5 ? `; and ${changes.length - 5} more` : "";
  throw new RunFolderError(
    `${run} was started on other inputs (${changes.slice(0, 5).join("; ")}${more}); resuming would mix old and new data: ${startOver}`,
  );
}

/** Creates or re-opens the run folder for `c` (c.output) and returns the plan. */
export function prepareRun(c: PipelineConfig): Plan {
  if (!c.output) throw new Error("pipeline: no run folder (set output, or pass --output)");
  const run = c.output;
  const json = `${JSON.stringify(pipelineToJson(c), null, 2)}\n`;
  if (existsSync(paths.pipeline(run))) {
    const old = JSON.stringify(pipelineToJson(validatePipeline(readJson(paths.pipeline(run)))), null, 2);
    if (`${old}\n` !== json)
      throw new RunFolderError(`${run} holds a different pipeline (see its pipeline.json): ${startOver}`);
    const plan = readJson<Plan>(paths.plan(run));
    checkInputs(run, c, plan);
    return plan;
  }
  const plan = makePlan(c);
  writeJson(paths.plan(run), plan);
  writeJson(
    paths.inputs(run),
    plan.inputs.map((i) => identify(i.path)),
  );
  // Written last: its presence says the folder is prepared.
  writeJson(paths.pipeline(run), pipelineToJson(c));
  return plan;
}

/** Deletes what a run wrote in `run` (the entries of RUN_ENTRIES, nothing else) so it starts over. */
export function restartRun(run: string): void {
  if (!run || !existsSync(paths.pipeline(run))) return;
  rmSync(paths.pipeline(run)); // first: a restart killed midway leaves a folder that is no longer prepared
  for (const e of RUN_ENTRIES) rmSync(join(run, e), { recursive: true, force: true });
}

/**
 * Removes temporary files left by killed tasks: regular files only. Entries are typed without following
 * links (lstat), so a link to a folder or file elsewhere (or to `..`) is never walked or removed.
 */
function removeTemporaries(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) removeTemporaries(p);
    else if (e.isFile() && /\.tmp-\d+-[a-z0-9]+$/.test(e.name)) rmSync(p, { force: true });
  }
}

/** A worker thread that runs one task at a time for the run folder. */
class PoolWorker {
  private readonly w: Worker;
  private pending: {
    resolve: (s: TaskStats) => void;
    reject: (e: Error) => void;
    onProgress: (d: number, b: number) => void;
  } | null = null;
  private dead: Error | null = null;
  constructor(runDir: string) {
    this.w = new Worker(new URL("./worker.js", import.meta.url), { workerData: { runDir } });
    this.w.on(
      "message",
      (m: { type: string; docs?: number; bytes?: number; stats?: TaskStats; message?: string }) => {
        const p = this.pending;
        if (!p) return;
        if (m.type === "progress") p.onProgress(m.docs!, m.bytes!);
        else {
          this.pending = null;
          if (m.type === "done") p.resolve(m.stats!);
          else p.reject(new Error(m.message));
        }
      },
    );
    const fail = (e: Error) => {
      this.dead = e;
      this.pending?.reject(e);
      this.pending = null;
    };
    this.w.on("error", fail);
    this.w.on("exit", (code) => fail(new Error(`worker exited with code ${code}`)));
  }
  run(stage: number, task: number, onProgress: (d: number, b: number) => void): Promise<TaskStats> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject: (e) => reject(new Error(`task ${task}: ${e.message}`)), onProgress };
      this.w.postMessage({ stage, task });
    });
  }
  async close(): Promise<void> {
    await this.w.terminate();
  }
}

export async function runLocal(c: PipelineConfig, opts: RunOptions = {}): Promise<Report> {
  const plan = prepareRun(c);
  const run = c.output;
  removeTemporaries(run);
  const workers = Math.max(1, opts.workers ?? c.workers);
  const pool = Array.from({ length: workers }, () => new PoolWorker(run));
  try {
    await runStages(run, plan, pool, opts);
  } finally {
    await Promise.all(pool.map((w) => w.close()));
  }
  return writeReport(run, c, plan);
}

async function runStages(run: string, plan: Plan, pool: PoolWorker[], opts: RunOptions): Promise<void> {
  for (let s = 0; s < plan.stages.length; s++) {
    const stage = plan.stages[s]!;
    const todo: number[] = [];
    for (let t = 0; t < stage.tasks; t++) if (!existsSync(paths.marker(run, stage.name, t))) todo.push(t);
    const prog: RunProgress = {
      stage: stage.name,
      stageIndex: s,
      stages: plan.stages.length,
      tasksDone: stage.tasks - todo.length,
      tasks: stage.tasks,
      docs: 0,
      bytes: 0,
    };
    opts.onProgress?.({ ...prog });
    let next = 0;
    const lane = async (w: PoolWorker) => {
      while (next < todo.length) {
        const t = todo[next++]!;
        await w.run(s, t, (d, b) => {
          prog.docs += d;
          prog.bytes += b;
          opts.onProgress?.({ ...prog });
        });
        prog.tasksDone++;
        opts.onProgress?.({ ...prog });
      }
    };
    await Promise.all(pool.slice(0, Math.min(pool.length, todo.length)).map(lane));
  }
}

/** Runs this process's share (t ≡ index mod count) of stage `s`'s tasks, in order. */
export async function runStageTasks(
  c: PipelineConfig,
  s: number,
  index: number,
  count: number,
): Promise<number> {
  const plan = prepareRun(c);
  const stage = plan.stages[s];
  if (!stage) throw new Error(`pipeline has stages 0..${plan.stages.length - 1}, not ${s}`);
  let ran = 0;
  for (let t = index; t < stage.tasks; t += count) {
    await runTask(c.output, c, plan, s, t);
    ran++;
  }
  return ran;
}
