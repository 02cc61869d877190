// What the decode benchmarks (bench/model.ts, bench/quant.ts) share: the roofline's bandwidth probe, and
// the child process that loads one checkpoint on one backend and generates (`node dist/bench/decode.js
// --child DIR`), so that its peak RSS (VmHWM) is the model's alone, not the parent's that wrote the
// checkpoint. This guest's memory bandwidth flips between ~80 and ~45 GB/s for seconds to minutes at a
// time (the host's doing: bench/RESULTS.md "Model"), so, as the probe keeps its best pass, the child
// generates HERD_BENCH_REPEATS times and reports its best run with the slowest beside it. The
// parent sets HERD_BENCH_PROMPT and HERD_BENCH_DECODE for the child (each benchmark has its defaults: README's knobs table).

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { getBackend } from "../src/backends/index.js";
import { nativeAvailable, nativeMemoryBandwidth } from "../src/backends/native/index.js";
import { knob } from "../src/core/knobs.js";
import { Rng } from "../src/core/rng.js";
import { generate } from "../src/generate/generate.js";
import type { LlamaConfig } from "../src/model/config.js";
import { loadModel } from "../src/model/load.js";
import { kvBytesPerToken } from "../src/model/presets.js";
import { env } from "./timing.js";

export const GB = 1e9;

/** Cached positions a decode step attends over, on average over `decode` steps after `prompt` tokens:
 * step j (1-based) sees prompt + j. */
export function meanCachedPositions(prompt: number, decode: number): number {
  return prompt + (decode + 1) / 2;
}

/**
 * KV-cache bytes a decode step reads, on average over `decode` steps after a `prompt`-token prompt:
 * every layer's K and V at meanCachedPositions, kept in f32 (src/model/kvcache.ts). Part of the decode
 * roofline beside the weights: a step must read both.
 */
export function kvBytesRead(c: LlamaConfig, prompt: number, decode: number): number {
  return kvBytesPerToken(c, "f32") * meanCachedPositions(prompt, decode);
}

export interface ChildResult {
  /** The weights' dtype as loaded (bf16, q8_0, q4_0, f32). */
  dtype: string;
  backend: string;
  threads: string;
  loadSeconds: number;
  promptTokens: number;
  prefillSeconds: number;
  decodeTokens: number;
  decodeSeconds: number;
  /** The slowest repeat's decode time (decodeSeconds is the fastest's). */
  slowestDecodeSeconds: number;
  maxRssBytes: number;
  rssAfterLoadBytes: number;
  /** Anonymous memory on 2 MiB transparent hugepages after the runs (Linux), else null. */
  hugepageBytes: number | null;
}

/** AnonHugePages of this process from /proc (Linux), or null elsewhere. */
function hugepageBytes(): number | null {
  try {
    const m = /AnonHugePages:\s+(\d+) kB/.exec(readFileSync("/proc/self/smaps_rollup", "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * The decode roofline's bandwidth: the native addon's streaming-read probe on `threads` threads (what a
 * decode step does to its weights), else, without the addon, a copy from JS. This guest's bandwidth
 * swings with its neighbours (the same probe has read 44 and 80 GB/s minutes apart), so a benchmark
 * probes before and after its runs and keeps the best: a low probe would flatter every percentage.
 */
export class RooflineProbe {
  best = 0;
  worst = Number.POSITIVE_INFINITY;
  readonly lines: string[] = [];
  constructor(private readonly threads: number) {}
  probe(when: string): number {
    if (nativeAvailable()) {
      const p = nativeMemoryBandwidth(1 << 30, 5, this.threads);
      this.lines.push(
        `memory bandwidth ${when}, ${this.threads} threads (1 GiB): read ${(p.read / GB).toFixed(1)} GB/s · copy, read + write ${(p.copy / GB).toFixed(1)} GB/s`,
      );
      this.best = Math.max(this.best, p.read);
      this.worst = Math.min(this.worst, p.read);
    } else {
      const c = copyBandwidth();
      this.lines.push(
        `memory bandwidth ${when}: 512 MiB copy from JS, read + write ${(c / GB).toFixed(1)} GB/s (the native probe is not built: the roofline uses this)`,
      );
      this.best = Math.max(this.best, c);
    }
    console.log(this.lines.at(-1));
    return this.best;
  }
  /** A warning when the probes disagree by more than 25% (the bandwidth changed during the run), else "". */
  spread(): string {
    if (!(this.worst > 0) || this.best / this.worst <= 1.25) return "";
    return `warning: the read bandwidth changed during the run (${(this.worst / GB).toFixed(1)}-${(this.best / GB).toFixed(1)} GB/s): a decode faster than the roofline means the probes missed the fast spells; rerun`;
  }
}

/** Best of `reps` copies of a `mb`-MiB buffer from JS (one thread): bytes moved (read + written) per second. */
export function copyBandwidth(mb = 512, reps = 5): number {
  const n = (mb * 1024 * 1024) / 8;
  const src = new Float64Array(n).fill(1);
  const dst = new Float64Array(n);
  dst.set(src); // fault the pages in
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    dst.set(src);
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return (2 * n * 8) / best;
}

/**
 * Peak resident bytes of this process image: VmHWM from /proc (Linux). getrusage's maxRSS is not used:
 * a spawned child inherits the parent's high-water mark across fork and exec.
 */
function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

async function child(dir: string): Promise<void> {
  const t0 = performance.now();
  const model = await loadModel(dir, { dtype: "keep" });
  const loadSeconds = (performance.now() - t0) / 1000;
  const rssAfterLoadBytes = process.memoryUsage().rss;
  const T = env("HERD_BENCH_PROMPT", 32);
  const draw = new Rng(12345);
  const prompt = [model.config.bosTokenId ?? 0];
  while (prompt.length < T) prompt.push(draw.nextU32() % Math.min(model.config.vocabSize, 128000));
  const runs = Array.from({ length: Math.max(1, env("HERD_BENCH_REPEATS", 3)) }, () =>
    generate(model, prompt, { maxNewTokens: env("HERD_BENCH_DECODE", 16) + 1, stopIds: [] }),
  );
  const r = runs.reduce((a, b) => (b.decodeSeconds < a.decodeSeconds ? b : a));
  const prefillSeconds = Math.min(...runs.map((x) => x.prefillSeconds));
  const result: ChildResult = {
    backend: getBackend().name,
    dtype: model.dtype,
    threads: String(knob("HERD_THREADS") ?? "default"),
    loadSeconds,
    promptTokens: r.promptTokens,
    prefillSeconds,
    decodeTokens: r.decodeTokens,
    decodeSeconds: r.decodeSeconds,
    slowestDecodeSeconds: Math.max(...runs.map((x) => x.decodeSeconds)),
    maxRssBytes: peakRss(),
    rssAfterLoadBytes,
    hugepageBytes: hugepageBytes(),
  };
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

/**
 * Run the decode child on `dir` with `backend` and `threads` (prompt and decode lengths as given, unless
 * the caller's environment sets them); errors carry the child's stderr.
 */
export function runDecodeChild(
  dir: string,
  backend: string,
  threads: number,
  lengths: { prompt: number; decode: number },
  extraEnv: Record<string, string> = {},
): ChildResult {
  const out = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--child", dir], {
    env: {
      ...process.env,
      HERD_BENCH_PROMPT: String(env("HERD_BENCH_PROMPT", lengths.prompt)),
      HERD_BENCH_DECODE: String(env("HERD_BENCH_DECODE", lengths.decode)),
      HERD_THREADS: String(threads),
      HERD_BACKEND: backend,
      ...extraEnv,
    },
    encoding: "utf8",
    maxBuffer: 1 << 24,
  });
  const line = out.stdout.split("\n").find((l) => l.startsWith("RESULT "));
  if (out.status !== 0 || !line)
    throw new Error(
      `bench decode child (${backend}, ${dir}) failed (status ${out.status}): ${out.stderr.slice(-2000)}`,
    );
  return JSON.parse(line.slice(7)) as ChildResult;
}

if (process.argv[2] === "--child" && process.argv[1] === fileURLToPath(import.meta.url)) {
  child(process.argv[3]!).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
