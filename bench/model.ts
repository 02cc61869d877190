// Model benchmark: a Llama 3.2 1B-shaped checkpoint with random weights (bf16 safetensors, made in a
// temporary directory and deleted afterwards, never committed) is loaded with its weights kept in bf16
// and asked to continue a 512-token prompt: prefill tokens/s, then decode tokens/s, on 2 threads. Beside
// the decode rate stands its roofline: bytes of weights one decode step reads over the memory bandwidth
// measured here with a large copy. Peak resident memory is the child process's VmHWM (the requirement:
// the bf16 1B model generates within 4 GB).
//
// The measurement runs in a child process (`node dist/bench/model.js --child DIR`) so that its peak RSS
// (VmHWM) is the model's alone, not the parent's that wrote the checkpoint. Knobs: HERD_BENCH_PROMPT (512),
// HERD_BENCH_DECODE (16 tokens), HERD_BENCH_THREADS (2), HERD_BENCH_PRESET (llama3.2-1b).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { getBackend } from "../src/backends/index.js";
import { generate } from "../src/generate/generate.js";
import { writeHFCheckpoint } from "../src/model/checkpoint/index.js";
import { toHFConfig } from "../src/model/config.js";
import { loadModel } from "../src/model/load.js";
import { decodeBytesPerToken, paramCount, preset } from "../src/model/presets.js";
import { initWeights } from "../src/model/weights.js";

const env = (name: string, fallback: number) => {
  const v = process.env[name];
  return v === undefined || v === "" ? fallback : Number(v);
};

interface ChildResult {
  backend: string;
  threads: string;
  loadSeconds: number;
  promptTokens: number;
  prefillSeconds: number;
  decodeTokens: number;
  decodeSeconds: number;
  maxRssBytes: number;
  rssAfterLoadBytes: number;
}

/** Best of `reps` copies of a `mb`-MiB buffer: bytes moved (read + written) per second. */
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
  const T = env("HERD_BENCH_PROMPT", 512);
  let s = 12345;
  const prompt = [model.config.bosTokenId ?? 0];
  while (prompt.length < T) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    prompt.push(s % Math.min(model.config.vocabSize, 128000));
  }
  const r = generate(model, prompt, { maxNewTokens: env("HERD_BENCH_DECODE", 16) + 1, stopIds: [] });
  const result: ChildResult = {
    backend: getBackend().name,
    threads: process.env.HERD_THREADS ?? "default",
    loadSeconds,
    promptTokens: r.promptTokens,
    prefillSeconds: r.prefillSeconds,
    decodeTokens: r.decodeTokens,
    decodeSeconds: r.decodeSeconds,
    maxRssBytes: peakRss(),
    rssAfterLoadBytes,
  };
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

const GB = 1e9;

export async function run(): Promise<void> {
  const name = process.env.HERD_BENCH_PRESET ?? "llama3.2-1b";
  const config = preset(name);
  const threads = env("HERD_BENCH_THREADS", 2);
  const dir = mkdtempSync(join(tmpdir(), "herd-bench-model-"));
  try {
    let t0 = performance.now();
    {
      const weights = initWeights(config, { seed: 1, dtype: "bf16" });
      const made = (performance.now() - t0) / 1000;
      t0 = performance.now();
      await writeHFCheckpoint(dir, toHFConfig(config, "bf16"), weights, { dtype: "bf16" });
      console.log(
        `${name}-shaped checkpoint, random weights: ${paramCount(config).toLocaleString("en-US")} parameters, bf16, made in ${made.toFixed(1)} s, written in ${((performance.now() - t0) / 1000).toFixed(1)} s (${dir}, deleted afterwards)`,
      );
      for (const t of weights.values()) t.dispose();
    }
    const bw = copyBandwidth();
    const bytesPerToken = decodeBytesPerToken(config, "bf16");
    const roofline = bw / bytesPerToken;
    console.log(
      `memory bandwidth (512 MiB copy, read + write): ${(bw / GB).toFixed(1)} GB/s; decode reads ${(bytesPerToken / GB).toFixed(2)} GB of weights per token → roofline ${roofline.toFixed(1)} tokens/s`,
    );
    const self = fileURLToPath(import.meta.url);
    const out = spawnSync(process.execPath, [self, "--child", dir], {
      env: { ...process.env, HERD_THREADS: String(threads) },
      encoding: "utf8",
      maxBuffer: 1 << 24,
    });
    const line = out.stdout.split("\n").find((l) => l.startsWith("RESULT "));
    if (out.status !== 0 || !line)
      throw new Error(`bench model: child failed (status ${out.status}): ${out.stderr.slice(-2000)}`);
    const r = JSON.parse(line.slice(7)) as ChildResult;
    const decodeRate = r.decodeTokens / r.decodeSeconds;
    console.log(`backend ${r.backend}, HERD_THREADS=${r.threads}, weights kept in bf16`);
    console.log(
      `load             ${r.loadSeconds.toFixed(1)} s (RSS after load ${(r.rssAfterLoadBytes / GB).toFixed(2)} GB)`,
    );
    console.log(
      `prefill          ${(r.promptTokens / r.prefillSeconds).toFixed(2)} tokens/s (${r.promptTokens}-token prompt in ${r.prefillSeconds.toFixed(1)} s)`,
    );
    console.log(
      `decode           ${decodeRate.toFixed(2)} tokens/s (${r.decodeTokens} tokens after the prompt) · roofline ${roofline.toFixed(1)} tokens/s · ${((100 * decodeRate) / roofline).toFixed(0)}% of it`,
    );
    console.log(`peak RSS         ${(r.maxRssBytes / GB).toFixed(2)} GB (limit 4 GB)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--child" && process.argv[1] === fileURLToPath(import.meta.url)) {
  child(process.argv[3]!).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
