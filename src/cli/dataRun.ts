// `herd data run PIPELINE.(json|yaml)`: runs a pipeline file locally on worker threads (resumable: run it
// again to continue), or one stage's share of tasks (--stage with TASK_INDEX/TASK_COUNT, as cluster array
// jobs do), or submits it to Slurm (--executor slurm).

import { resolve } from "node:path";
import {
  type CliValues,
  commandHelp,
  HELP_OPTION,
  type Schema,
  SchemaError,
  UsageError,
} from "../core/schema.js";
import { loadPipeline, type PipelineConfig } from "../data/pipeline/config.js";
import { RunFolderError, restartRun, runLocal, runStageTasks } from "../data/pipeline/run.js";
import { parseCommand } from "./command.js";
import { progressPrinter } from "./dataProgress.js";
import { printSummary } from "./dataSummary.js";

export const OPTIONS = {
  output: { type: "string", arg: "DIR", doc: 'the run folder (overrides the file\'s "output")' },
  restart: {
    type: "boolean",
    default: false,
    doc: "delete what an earlier run wrote in the run folder and start over (needed when the pipeline or its input files changed since that run started)",
  },
  workers: { type: "integer", min: 1, doc: 'worker threads (overrides the file\'s "workers")' },
  stage: {
    type: "integer",
    min: 0,
    arg: "S",
    doc: "run only stage S, the tasks t with t % TASK_COUNT == TASK_INDEX (environment; SLURM_ARRAY_TASK_ID stands in for TASK_INDEX)",
  },
  executor: {
    type: "enum",
    choices: ["local", "slurm"],
    default: "local",
    doc: "local: worker threads here; slurm: submit the stages as sbatch job arrays chained by dependencies",
  },
  partition: { type: "string", arg: "P", doc: "Slurm partition (with --executor slurm)" },
  wait: { type: "boolean", default: false, doc: "wait for the Slurm jobs to finish (with --executor slurm)" },
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp(
  "usage: herd data run PIPELINE.(json|yaml) [options]",
  OPTIONS,
  "Runs every stage of the pipeline into its run folder; a run that stopped resumes where it left off.",
);

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(OPTIONS, HELP, argv, { positionals: true });
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError("give one pipeline file");
  try {
    const config = loadPipeline(positionals[0]!);
    if (values.output) config.output = resolve(values.output);
    if (values.workers !== undefined) config.workers = values.workers;
    return await dispatch(config, values);
  } catch (e) {
    if (e instanceof SchemaError || e instanceof RunFolderError) {
      process.stderr.write(`herd data run: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

async function dispatch(config: PipelineConfig, values: CliValues<typeof OPTIONS>): Promise<number> {
  if (values.restart && values.stage !== undefined) {
    process.stderr.write(
      "herd data run: --restart cannot go with --stage (every array task would restart)\n",
    );
    return 2;
  }
  if (values.restart) restartRun(config.output);
  if (values.stage !== undefined) {
    const index = Number(process.env.TASK_INDEX ?? process.env.SLURM_ARRAY_TASK_ID ?? 0);
    const count = Number(process.env.TASK_COUNT ?? 1);
    if (!Number.isInteger(index) || !Number.isInteger(count) || count < 1 || index < 0 || index >= count) {
      process.stderr.write(`herd data run: TASK_INDEX=${index} TASK_COUNT=${count} is not a valid split\n`);
      return 2;
    }
    const ran = await runStageTasks(config, values.stage, index, count);
    process.stderr.write(`stage ${values.stage}: ran ${ran} task(s) as ${index}/${count}\n`);
    return 0;
  }
  if (values.executor === "slurm") {
    const { submitSlurm } = await import("../data/pipeline/slurm.js");
    const jobs = await submitSlurm(config, { partition: values.partition, wait: values.wait });
    process.stdout.write(`submitted ${jobs.length} job(s): ${jobs.join(" ")}\n`);
    return 0;
  }
  const p = progressPrinter();
  const report = await runLocal(config, { onProgress: p.onProgress });
  p.done();
  printSummary(config.output, report);
  return 0;
}
