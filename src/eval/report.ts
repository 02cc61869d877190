// What an evaluation run leaves behind, shaped like lm-evaluation-harness's output so tools that read
// one read the other: results.json (`results` per task with "<metric>,<filter>" and
// "<metric>_stderr,<filter>" keys, `group_subtasks`, `configs`, `n-shot`, `n-samples`,
// `higher_is_better`, `versions` (the harness config each task follows), `config` with the model and
// dtype, herd's version and git commit), one samples_<task>.jsonl per task with --log-samples, and the
// harness's summary table. `compare` puts several runs side by side as a Markdown table and an SVG bar
// chart. Files are written atomically.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../core/paths.js";
import { writeFileAtomic } from "../io/atomic.js";
import { escapeXml as esc } from "../io/xml.js";
import type { TaskResults } from "./harness.js";

export interface RunInfo {
  model: string;
  dtype: string;
  chat: boolean;
  limit: number | null;
  batch: number;
  seconds: number;
}

export type ResultsJson = Omit<TaskResults, "samples"> & {
  config: Record<string, unknown>;
  herd_version: string;
  git_hash: string | null;
  date: number;
  total_evaluation_time_seconds: string;
};

function herdVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string })
    .version;
}

/** The commit of herd's checkout, when it is one and git is installed (else null). */
export function gitHash(): string | null {
  try {
    const out = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: packageRoot(),
      stdio: ["ignore", "pipe", "ignore"],
    });
    return out.toString().trim() || null;
  } catch {
    return null;
  }
}

export function resultsJson(r: TaskResults, info: RunInfo): ResultsJson {
  const { samples: _, ...rest } = r;
  return {
    ...rest,
    config: {
      model: "herd",
      model_args: `pretrained=${info.model},dtype=${info.dtype}`,
      model_path: info.model,
      dtype: info.dtype,
      chat_format: info.chat,
      batch_size: info.batch,
      limit: info.limit,
    },
    herd_version: herdVersion(),
    git_hash: gitHash(),
    date: Date.now() / 1000,
    total_evaluation_time_seconds: String(info.seconds),
  };
}

/** results.json and, for each task with samples, samples_<task>.jsonl; returns the results path. */
export function writeRun(dir: string, json: ResultsJson, samples: TaskResults["samples"]): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "results.json");
  writeFileAtomic(path, `${JSON.stringify(json, null, 2)}\n`);
  for (const [task, rows] of Object.entries(samples))
    writeFileAtomic(join(dir, `samples_${task}.jsonl`), rows.map((s) => `${JSON.stringify(s)}\n`).join(""));
  return path;
}

const fmt = (v: unknown) => (typeof v === "number" ? v.toFixed(4) : String(v ?? ""));

/** The harness's table: task, filter, n-shot, metric, value ± stderr. Groups after their subtasks. */
export function summaryTable(r: Pick<TaskResults, "results" | "n-shot" | "group_subtasks">): string {
  const lines = ["|Tasks|Filter|n-shot|Metric|Value| |Stderr|", "|---|---|--:|---|--:|---|--:|"];
  for (const [task, row] of Object.entries(r.results))
    for (const [key, v] of Object.entries(row)) {
      if (key === "alias" || key.includes("_stderr,")) continue;
      const [metric, filter] = key.split(",");
      const err = row[`${metric}_stderr,${filter}`];
      const shots = r["n-shot"][task] ?? "";
      lines.push(
        `|${task}|${filter}|${shots}|${metric}|${fmt(v)}|${err === undefined ? "" : "±"}|${fmt(err)}|`,
      );
    }
  return lines.join("\n");
}

/** A results.json, or a run folder holding one. */
export function readResults(path: string): ResultsJson {
  const file = statSync(path).isDirectory() ? join(path, "results.json") : path;
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: not a results JSON (${(e as Error).message})`);
  }
  if (typeof v !== "object" || v === null || typeof (v as { results?: unknown }).results !== "object")
    throw new Error(`${file}: field 'results' is missing`);
  return v as ResultsJson;
}

export interface CompareRow {
  task: string;
  metric: string;
  values: (number | null)[];
}

/** Rows of every task × metric (stderr aside) present in any run. */
export function compareRows(runs: readonly ResultsJson[]): CompareRow[] {
  const keys: [string, string][] = [];
  for (const r of runs)
    for (const [task, row] of Object.entries(r.results))
      for (const [k, v] of Object.entries(row))
        if (typeof v === "number" && !k.includes("_stderr,") && !keys.some(([t, m]) => t === task && m === k))
          keys.push([task, k]);
  return keys.map(([task, metric]) => ({
    task,
    metric,
    values: runs.map((r) => {
      const v = r.results[task]?.[metric];
      return typeof v === "number" ? v : null;
    }),
  }));
}

export function compareMarkdown(names: readonly string[], rows: readonly CompareRow[]): string {
  const head = `|task|metric|${names.join("|")}|`;
  const sep = `|---|---|${names.map(() => "--:").join("|")}|`;
  const body = rows.map(
    (r) => `|${r.task}|${r.metric}|${r.values.map((v) => (v === null ? "–" : v.toFixed(4))).join("|")}|`,
  );
  return [head, sep, ...body].join("\n");
}

const COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"];

/** Grouped bars: one group per task × metric, one bar per run (values in [0, 1] drawn to scale). */
export function compareSvg(names: readonly string[], rows: readonly CompareRow[]): string {
  const bw = 18;
  const gap = 22;
  const gw = names.length * bw + gap;
  const left = 48;
  const top = 30;
  const h = 220;
  const W = Math.max(left + rows.length * gw + 20, 360);
  const H = top + h + 110 + 18 * names.length;
  const top1 = Math.max(1, ...rows.flatMap((r) => r.values.map((v) => v ?? 0)));
  const y = (v: number) => top + h - (v / top1) * h;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<line x1="${left}" y1="${top + h}" x2="${W - 10}" y2="${top + h}" stroke="black"/>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (top1 * i) / 4;
    out.push(`<text x="${left - 6}" y="${y(v) + 3}" text-anchor="end">${v.toFixed(2)}</text>`);
    out.push(`<line x1="${left}" y1="${y(v)}" x2="${W - 10}" y2="${y(v)}" stroke="#ddd"/>`);
  }
  rows.forEach((r, g) => {
    const x0 = left + 10 + g * gw;
    r.values.forEach((v, i) => {
      if (v === null) return;
      out.push(
        `<rect class="bar" x="${x0 + i * bw}" y="${y(v)}" width="${bw - 2}" height="${top + h - y(v)}" fill="${COLOURS[i % COLOURS.length]}"><title>${esc(`${names[i]}: ${r.task} ${r.metric} ${v.toFixed(4)}`)}</title></rect>`,
      );
    });
    const cx = x0 + (names.length * bw) / 2;
    out.push(
      `<text transform="translate(${cx},${top + h + 10}) rotate(40)" font-size="10">${esc(`${r.task} ${r.metric.replace(",none", "")}`)}</text>`,
    );
  });
  names.forEach((n, i) => {
    const ly = H - 18 * (names.length - i);
    out.push(
      `<rect x="${left}" y="${ly - 9}" width="10" height="10" fill="${COLOURS[i % COLOURS.length]}"/>`,
    );
    out.push(`<text x="${left + 16}" y="${ly}">${esc(n)}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
