// The run report: the funnel (documents and bytes in and out of every block, drops by reason), input
// issues, per-language and per-domain counts of the output, the mix achieved vs asked, and near-duplicate
// cluster sizes — as report.json and as an SVG chart (report.svg), both in the run folder.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { BlockStats, type BlockStatsJson } from "../block.js";
import { readJson, writeAtomic, writeJson } from "../files.js";
import type { InputIssue } from "../issues.js";
import type { PipelineConfig } from "./config.js";
import { type Plan, paths } from "./plan.js";
import { reportSvg } from "./svg.js";
import type { TaskStats } from "./task.js";

type Counts = Record<string, { docs: number; bytes: number }>;

export interface Report {
  name: string;
  funnel: (BlockStatsJson & { step: number | null })[];
  issues: { counts: Record<string, number>; first: InputIssue[] };
  languages: Counts;
  domains: Counts;
  /** Share of output bytes per mix class, asked and achieved (when the pipeline mixes). */
  mix?: { asked: Record<string, number>; achieved: Record<string, number> };
  /** Near-duplicate clusters: how many clusters of each size (when the pipeline runs minhashDedup). */
  duplicates?: { documents: number; removed: number; clusterSizes: Record<string, number> };
}

function addCounts(into: Counts, from: Counts | undefined): void {
  for (const [k, v] of Object.entries(from ?? {})) {
    const e = (into[k] ??= { docs: 0, bytes: 0 });
    e.docs += v.docs;
    e.bytes += v.bytes;
  }
}

export function buildReport(run: string, c: PipelineConfig, plan: Plan): Report {
  const funnel = new Map<string, BlockStatsJson & { step: number | null }>();
  const issues: Report["issues"] = { counts: {}, first: [] };
  const languages: Counts = {};
  const domains: Counts = {};
  for (const stage of plan.stages) {
    if (stage.kind !== "shard") continue;
    for (let t = 0; t < stage.tasks; t++) {
      const m = paths.marker(run, stage.name, t);
      if (!existsSync(m)) throw new Error(`report: ${stage.name} task ${t} has not finished`);
      const s = readJson<TaskStats>(m);
      for (const b of s.blocks) {
        const key = b.step === null ? "read" : String(b.step);
        const cur = funnel.get(key);
        funnel.set(key, cur ? { ...BlockStats.merge(cur, b), step: b.step } : b);
      }
      for (const [k, v] of Object.entries(s.issues.counts)) issues.counts[k] = (issues.counts[k] ?? 0) + v;
      if (issues.first.length < 100) issues.first.push(...s.issues.first.slice(0, 100 - issues.first.length));
      addCounts(languages, s.languages);
      addCounts(domains, s.domains);
    }
  }
  const order = [...funnel.values()].sort((a, b) => (a.step ?? -1) - (b.step ?? -1));
  const report: Report = { name: c.name, funnel: order, issues, languages, domains };
  c.steps.forEach((s, i) => {
    const dir = paths.stepWork(run, i, s.type);
    if (s.type === "minhashDedup" && existsSync(join(dir, "clusters.json")))
      report.duplicates = readJson(join(dir, "clusters.json"));
    if (s.type === "mix") {
      const asked = s.params.targets as Record<string, number>;
      const sum = Object.values(asked).reduce((a, b) => a + b, 0);
      const total = Object.values(domains).reduce((a, b) => a + b.bytes, 0);
      report.mix = {
        asked: Object.fromEntries(Object.entries(asked).map(([k, v]) => [k, v / sum])),
        achieved: Object.fromEntries(
          Object.keys(asked).map((k) => [k, total > 0 ? (domains[k]?.bytes ?? 0) / total : 0]),
        ),
      };
    }
  });
  return report;
}

export function writeReport(run: string, c: PipelineConfig, plan: Plan): Report {
  const r = buildReport(run, c, plan);
  writeJson(join(run, "report.json"), r);
  writeAtomic(join(run, "report.svg"), reportSvg(r));
  return r;
}
