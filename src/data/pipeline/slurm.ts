// The Slurm executor: each stage becomes an sbatch job array (one array element per task, TASK_INDEX from
// SLURM_ARRAY_TASK_ID) that depends on the previous stage finishing (afterok), and a last one-task job
// writes the report (a local run whose tasks are all marked done). The run folder must be on storage every
// node sees. Scripts and logs go under <run>/slurm/.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { writeAtomic } from "../files.js";
import type { PipelineConfig } from "./config.js";
import { paths } from "./plan.js";
import { prepareRun } from "./run.js";

export interface SlurmOptions {
  partition?: string;
  /** Poll until every job has left the queue, then check the report exists. */
  wait?: boolean;
  /** Poll interval in ms (default 2000). */
  pollMs?: number;
  /** Extra #SBATCH lines, e.g. ["--time=01:00:00"]. */
  extra?: string[];
}

const cliPath = () => resolve(fileURLToPath(new URL("../../cli/main.js", import.meta.url)));

function script(lines: string[]): string {
  return `#!/bin/bash\n${lines.join("\n")}\n`;
}

function sbatch(args: string[]): string {
  const out = execFileSync("sbatch", ["--parsable", ...args], { encoding: "utf8" }).trim();
  const id = out.split(";")[0]!;
  if (!/^\d+$/.test(id)) throw new Error(`sbatch answered '${out}'`);
  return id;
}

/** Submits the pipeline; returns the job ids in order (stages, then the report job). */
export async function submitSlurm(c: PipelineConfig, opts: SlurmOptions = {}): Promise<string[]> {
  const plan = prepareRun(c);
  const run = c.output;
  const dir = join(run, "slurm");
  mkdirSync(join(dir, "logs"), { recursive: true });
  const node = process.execPath;
  const cli = cliPath();
  const common = [
    ...(opts.partition ? [`#SBATCH --partition=${opts.partition}`] : []),
    "#SBATCH --cpus-per-task=1",
    ...(opts.extra ?? []).map((e) => `#SBATCH ${e}`),
  ];
  const ids: string[] = [];
  plan.stages.forEach((stage, s) => {
    const file = join(dir, `${stage.name}.sh`);
    writeAtomic(
      file,
      script([
        `#SBATCH --job-name=herd-${c.name}-${stage.name}`,
        `#SBATCH --array=0-${stage.tasks - 1}`,
        `#SBATCH --output=${join(dir, "logs", `${stage.name}-%a.out`)}`,
        ...common,
        "set -euo pipefail",
        `export TASK_INDEX=$SLURM_ARRAY_TASK_ID TASK_COUNT=${stage.tasks}`,
        `exec "${node}" "${cli}" data run "${paths.pipeline(run)}" --stage ${s}`,
      ]),
    );
    ids.push(sbatch([...(ids.length > 0 ? [`--dependency=afterok:${ids[ids.length - 1]}`] : []), file]));
  });
  const reportFile = join(dir, "report.sh");
  writeAtomic(
    reportFile,
    script([
      `#SBATCH --job-name=herd-${c.name}-report`,
      `#SBATCH --output=${join(dir, "logs", "report.out")}`,
      ...common,
      "set -euo pipefail",
      `exec "${node}" "${cli}" data run "${paths.pipeline(run)}"`,
    ]),
  );
  ids.push(sbatch([`--dependency=afterok:${ids[ids.length - 1]}`, reportFile]));
  if (opts.wait) await waitForJobs(ids, opts.pollMs ?? 2000);
  return ids;
}

/** Waits until none of the jobs is queued or running. */
export async function waitForJobs(ids: string[], pollMs = 2000): Promise<void> {
  for (;;) {
    const out = execFileSync("squeue", ["-h", "-o", "%i %T", "-j", ids.join(",")], {
      encoding: "utf8",
    }).trim();
    if (out === "") return;
    // A job whose dependency can never be met stays pending forever: report it.
    if (
      /DependencyNeverSatisfied/.test(
        execFileSync("squeue", ["-h", "-o", "%r", "-j", ids.join(",")], { encoding: "utf8" }),
      )
    )
      throw new Error(
        `slurm: a stage failed (dependency never satisfied); see the logs under the run's slurm/logs/`,
      );
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
