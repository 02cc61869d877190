// Runs one task of one stage. A shard task reads its documents (input files or the previous shard
// stage's file), passes them through the stage's blocks, feeds the collector or writes the final output,
// and writes removed documents beside; a reduce task runs a global step's reduce. Everything a task writes
// is renamed into place before its marker (with its stats) is written, so a killed task is simply run
// again and gives the same bytes.
import { existsSync } from "node:fs";
import { knob } from "../../core/knobs.js";
import { applyBlock, BlockStats, type BlockStatsJson, type DocBlock } from "../block.js";
import { type Document, textBytes } from "../document.js";
import { readJson, writeJson } from "../files.js";
import { type InputIssue, IssueLog } from "../issues.js";
import { readInputs } from "../readers/index.js";
import { readJsonl } from "../readers/jsonl.js";
import { JsonlShardWriter, JsonlWriter } from "../writers.js";
import type { PipelineConfig } from "./config.js";
import { type Plan, paths, type ShardStage } from "./plan.js";
import { stepByType } from "./registry.js";
import type { TaskContext } from "./types.js";

export interface TaskStats {
  stage: string;
  task: number;
  blocks: (BlockStatsJson & { step: number | null })[];
  issues: { counts: Record<string, number>; first: InputIssue[] };
  /** Final-stage tallies: documents and bytes per language and per domain class. */
  languages?: Record<string, { docs: number; bytes: number }>;
  domains?: Record<string, { docs: number; bytes: number }>;
}

export interface TaskProgress {
  docs: number;
  bytes: number;
}

export function context(
  runDir: string,
  c: PipelineConfig,
  plan: Plan,
  task: number,
  step: number,
): TaskContext {
  const s = c.steps[step]!;
  return { runDir, task, tasks: plan.tasks, seed: c.seed, workDir: paths.stepWork(runDir, step, s.type) };
}

async function runShard(
  runDir: string,
  c: PipelineConfig,
  plan: Plan,
  s: number,
  stage: ShardStage,
  t: number,
  onProgress?: (p: TaskProgress) => void,
): Promise<TaskStats> {
  const issues = new IssueLog(100);
  const readStats = new BlockStats("read");
  let source: AsyncIterable<Document>;
  if (stage.source === "input") {
    const files = plan.taskInputs[t]!.map((i) => plan.inputs[i]!);
    source = readInputs(files, {
      textField: c.input.textField,
      idField: c.input.idField,
      urlField: c.input.urlField,
      invalidUtf8: c.input.invalidUtf8 as "replace" | "skip",
      onIssue: issues.sink,
    });
  } else source = readJsonl(paths.shard(runDir, stage.source, t), { onIssue: issues.sink });

  let progressDocs = 0;
  let progressBytes = 0;
  let lastReport = Date.now();
  async function* counted(): AsyncGenerator<Document> {
    for await (const d of source) {
      readStats.docsOut++;
      const b = textBytes(d.text);
      readStats.bytesOut += b;
      progressDocs++;
      progressBytes += b;
      if (onProgress && Date.now() - lastReport > 250) {
        onProgress({ docs: progressDocs, bytes: progressBytes });
        progressDocs = 0;
        progressBytes = 0;
        lastReport = Date.now();
      }
      yield d;
    }
  }

  const blocks: { step: number; block: DocBlock }[] = [];
  if (stage.apply !== null) {
    const spec = stepByType(c.steps[stage.apply]!.type)!;
    blocks.push({
      step: stage.apply,
      block: await spec.global!.apply(c.steps[stage.apply]!.params, context(runDir, c, plan, t, stage.apply)),
    });
  }
  for (const i of stage.blocks) {
    const spec = stepByType(c.steps[i]!.type)!;
    blocks.push({ step: i, block: await spec.block!(c.steps[i]!.params, context(runDir, c, plan, t, i)) });
  }

  const removedWriters = new Map<number, JsonlWriter>();
  const stats = blocks.map((b) => new BlockStats(c.steps[b.step]!.type));
  let stream: AsyncIterable<Document> = counted();
  blocks.forEach((b, k) => {
    const keep = c.steps[b.step]!.keepRemoved;
    const onDrop = keep
      ? (doc: Document, reason: string) => {
          let w = removedWriters.get(b.step);
          if (!w) {
            w = new JsonlWriter(paths.removed(runDir, b.step, c.steps[b.step]!.type, t));
            removedWriters.set(b.step, w);
          }
          w.write({
            ...doc,
            meta: { ...doc.meta, removed_by: c.steps[b.step]!.type, removed_reason: reason },
          });
        }
      : undefined;
    stream = applyBlock(b.block, stream, stats[k], onDrop);
  });

  const result: TaskStats = { stage: stage.name, task: t, blocks: [], issues: { counts: {}, first: [] } };
  const final = stage.collect === null;
  // Final output: one file per task, or numbered parts of at most outputMaxDocs documents.
  const writer =
    final && c.outputMaxDocs > 0
      ? new JsonlShardWriter(paths.output(runDir, t, "").slice(0, -1), {
          maxDocs: c.outputMaxDocs,
          suffix: `.${c.outputFormat}`,
        })
      : new JsonlWriter(final ? paths.output(runDir, t, c.outputFormat) : paths.shard(runDir, stage.name, t));
  const collector =
    stage.collect !== null
      ? await stepByType(c.steps[stage.collect]!.type)!.global!.collect(
          c.steps[stage.collect]!.params,
          context(runDir, c, plan, t, stage.collect),
        )
      : null;
  // Fault injection for the resume test: HERD_DATA_CRASH=STAGE:N kills the whole process (SIGKILL) when a
  // task of shard stage STAGE has written N documents, leaving its files half written.
  const crash = knob("HERD_DATA_CRASH");
  const languages: Record<string, { docs: number; bytes: number }> = {};
  const domains: Record<string, { docs: number; bytes: number }> = {};
  const tally = (m: typeof languages, key: unknown, bytes: number) => {
    const k = typeof key === "string" ? key : "unknown";
    const e = (m[k] ??= { docs: 0, bytes: 0 });
    e.docs++;
    e.bytes += bytes;
  };
  try {
    for await (const doc of stream) {
      if (collector) await collector.add(doc);
      else {
        const b = textBytes(doc.text);
        tally(languages, doc.meta.language, b);
        tally(domains, doc.meta.domain, b);
      }
      writer.write(doc);
      if (crash && crash[0] === s && writer.docs >= crash[1]!) process.kill(process.pid, "SIGKILL");
    }
    if (collector) await collector.finish();
    for (const w of removedWriters.values()) await w.close();
    await writer.close();
  } catch (e) {
    writer.abort();
    for (const w of removedWriters.values()) w.abort();
    throw e;
  }
  if (onProgress && (progressDocs > 0 || progressBytes > 0))
    onProgress({ docs: progressDocs, bytes: progressBytes });
  result.blocks = [
    ...(stage.source === "input" ? [{ ...readStats.toJSON(), step: null }] : []),
    ...stats.map((s, k) => ({ ...s.toJSON(), step: blocks[k]!.step })),
  ];
  result.issues = { counts: issues.counts as Record<string, number>, first: issues.first };
  if (final) {
    result.languages = languages;
    result.domains = domains;
  }
  return result;
}

/** Runs task `t` of stage `s` unless its marker exists; returns its stats. */
export async function runTask(
  runDir: string,
  c: PipelineConfig,
  plan: Plan,
  s: number,
  t: number,
  onProgress?: (p: TaskProgress) => void,
): Promise<TaskStats> {
  const stage = plan.stages[s]!;
  const marker = paths.marker(runDir, stage.name, t);
  if (existsSync(marker)) return readJson<TaskStats>(marker);
  let stats: TaskStats;
  if (stage.kind === "shard") stats = await runShard(runDir, c, plan, s, stage, t, onProgress);
  else {
    const step = c.steps[stage.step]!;
    const spec = stepByType(step.type)!.global!.reduces[stage.reduce]!;
    await spec.run(step.params, { ...context(runDir, c, plan, 0, stage.step), reduceTask: t });
    stats = { stage: stage.name, task: t, blocks: [], issues: { counts: {}, first: [] } };
  }
  writeJson(marker, stats);
  return stats;
}
