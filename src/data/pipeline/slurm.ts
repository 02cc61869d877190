// The Slurm executor: each stage becomes an sbatch job array (one array element per task, TASK_INDEX from
// SLURM_ARRAY_TASK_ID) that depends on the previous stage finishing (afterok), and a last one-task job
// writes the report (a local run whose tasks are all marked done). The run folder must be on storage every
// node sees. Scripts and logs go under <run>/slurm/. Values on #SBATCH lines (read by Slurm, not a shell)
// are checked to be plain; everything in the shell part is single-quoted.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { writeAtomic } from "../files.js";
import type { PipelineConfig } from "./config.js";
import { type Plan, paths } from "./plan.js";
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

/** One shell word: single-quoted, so nothing in it ($, `, ", ;, newlines) is ever interpreted. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** An #SBATCH option. Slurm reads these lines itself, without shell quoting: values stay plain. */
function sbatchLine(opt: string, value: string, what: string): string {
  if (!/^[\w./,%=:-]+$/.test(value))
    throw new Error(`slurm: ${what} ${JSON.stringify(value)}: use only letters, digits and _ . / , % = : -`);
  return `#SBATCH --${opt}=${value}`;
}

function script(lines: string[]): string {
  return `#!/bin/bash\n${lines.join("\n")}\n`;
}

function sbatch(args: string[], cwd: string): string {
  const out = execFileSync("sbatch", ["--parsable", ...args], { encoding: "utf8", cwd }).trim();
  const id = out.split(";")[0]!;
  if (!/^\d+$/.test(id)) throw new Error(`sbatch answered '${out}'`);
  return id;
}

export interface SlurmScript {
  file: string;
  text: string;
}

/**
 * The sbatch scripts of a prepared run: one per stage, then the report job. They are submitted from
 * <run>/slurm/, so the #SBATCH lines name the logs relative to it and hold no path of the run; every
 * path the shell sees is one quoted word.
 */
export function slurmScripts(c: PipelineConfig, plan: Plan, opts: SlurmOptions = {}): SlurmScript[] {
  const run = c.output;
  const dir = join(run, "slurm");
  const exec = (args: string[]) =>
    `exec ${[process.execPath, cliPath(), "data", "run", paths.pipeline(run), ...args].map(shellQuote).join(" ")}`;
  const common = [
    ...(opts.partition !== undefined ? [sbatchLine("partition", opts.partition, "--partition")] : []),
    "#SBATCH --cpus-per-task=1",
    ...(opts.extra ?? []).map((e) => {
      const m = /^--([a-z-]+)=(.*)$/s.exec(e);
      if (!m) throw new Error(`slurm: extra option ${JSON.stringify(e)}: expected --name=value`);
      return sbatchLine(m[1]!, m[2]!, `extra option --${m[1]}`);
    }),
  ];
  const job = (what: string) =>
    sbatchLine("job-name", `herd-${c.name}-${what}`, "job name (the pipeline's name)");
  const out = plan.stages.map((stage, s) => ({
    file: join(dir, `${stage.name}.sh`),
    text: script([
      job(stage.name),
      `#SBATCH --array=0-${stage.tasks - 1}`,
      sbatchLine("output", `logs/${stage.name}-%a.out`, "log file"),
      ...common,
      "set -euo pipefail",
      `export TASK_INDEX="$SLURM_ARRAY_TASK_ID" TASK_COUNT=${stage.tasks}`,
      exec(["--stage", String(s)]),
    ]),
  }));
  out.push({
    file: join(dir, "report.sh"),
    text: script([
      job("report"),
      sbatchLine("output", "logs/report.out", "log file"),
      ...common,
      "set -euo pipefail",
      exec([]),
    ]),
  });
  return out;
}

/** Submits the pipeline; returns the job ids in order (stages, then the report job). */
export async function submitSlurm(c: PipelineConfig, opts: SlurmOptions = {}): Promise<string[]> {
  const plan = prepareRun(c);
  const scripts = slurmScripts(c, plan, opts);
  const dir = join(c.output, "slurm");
  mkdirSync(join(dir, "logs"), { recursive: true });
  const ids: string[] = [];
  for (const s of scripts) {
    writeAtomic(s.file, s.text);
    const after = ids.length > 0 ? [`--dependency=afterok:${ids[ids.length - 1]}`] : [];
    ids.push(sbatch([...after, s.file], dir));
  }
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
