// herd beside llama.cpp on one GGUF file: for the Llama 3.2 1B shape with random weights, a GGUF file per
// type (BF16, Q8_0, Q4_0, Q4_K_M: herd's writer, metadata and llama.cpp's mix, under the OS temp dir and
// deleted afterwards) is read by herd (native backend, its own child process, bench/decode.ts) and by
// llama.cpp (node-llama-cpp's prebuilt CPU build, in this process), both with HERD_BENCH_THREADS threads:
// prefill and decode tokens/s, each beside its decode roofline (the bytes one decode step reads, weights
// and KV cache as each engine holds them, over the best streaming-read bandwidth probed before and after).
// herd's KV cache is f32, llama.cpp's its default F16; herd dequantises K-quant matrices to bf16 when it
// loads them until it has native K-quant kernels, so its Q4_K_M row reads bf16 weights.
//
// To keep the files quick to make, each matrix is 256 random rows (uniform, σ ≈ 0.02) stored once in its type and
// repeated down the matrix: the bytes and the work are a real model's, the values are not.
// Knobs: HERD_BENCH_PROMPT (64), HERD_BENCH_DECODE (16), HERD_BENCH_THREADS (2), HERD_BENCH_REPEATS (3),
// HERD_BENCH_PRESET.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { knob } from "../src/core/knobs.js";
import { Rng } from "../src/core/rng.js";
import { type GGUFTensorOut, ggmlTensorBytes, writeGGUF } from "../src/model/checkpoint/gguf.js";
import {
  type GGUFExportType,
  type GGUFTensorPlan,
  ggufMetadata,
  ggufTensorBytes,
  ggufTensorPlan,
} from "../src/model/checkpoint/ggufLlama.js";
import type { LlamaConfig } from "../src/model/config.js";
import { kvBytesPerToken, paramCount, preset } from "../src/model/presets.js";
import { fromArray } from "../src/tensor/tensor.js";
import { Tokenizer } from "../src/tokenizer/index.js";
import { GB, meanCachedPositions, RooflineProbe, runDecodeChild } from "./decode.js";
import { env, row } from "./timing.js";

const TYPES: GGUFExportType[] = ["bf16", "q8_0", "q4_0", "q4_k_m"];
const ROWS = 256;

/** Write the GGUF file of `c` at `type` with tiled random rows (see the header); returns its plan. */
function writeTiled(path: string, c: LlamaConfig, type: GGUFExportType): GGUFTensorPlan[] {
  const plan = ggufTensorPlan(c, type);
  const cache = new Map<string, Uint8Array>();
  const draw = new Rng(7);
  const tensors: GGUFTensorOut[] = plan.map((p) => ({
    name: p.name,
    dims: p.dims,
    type: p.type,
    data: () => {
      if (p.dims.length === 1)
        return new Uint8Array(Float32Array.from({ length: p.dims[0]! }, () => 1).buffer);
      const [k, n] = p.dims as [number, number];
      const key = `${k}/${p.type}`;
      let tile = cache.get(key);
      if (!tile) {
        const v = new Float32Array(ROWS * k);
        for (let i = 0; i < v.length; i++) v[i] = (draw.next() - 0.5) * 0.07; // uniform, σ ≈ 0.02
        const t = fromArray(v, [ROWS, k]);
        tile = ggufTensorBytes({ ...p, dims: [k, ROWS], heads: 0 }, t);
        t.dispose();
        cache.set(key, tile);
      }
      const out = new Uint8Array(ggmlTensorBytes(p.type, p.dims));
      for (let at = 0; at < out.length; at += tile.length)
        out.set(tile.subarray(0, Math.min(tile.length, out.length - at)), at);
      void n;
      return out;
    },
  }));
  writeGGUF(path, ggufMetadata(c, Tokenizer.llama3(), type, "random 1B-shaped"), tensors);
  return plan;
}

/** Weight bytes one decode step reads from the file's tensors (an untied embedding: one row). */
function weightBytes(c: LlamaConfig, plan: GGUFTensorPlan[], asBf16: boolean): number {
  let bytes = 0;
  for (const p of plan) {
    const b = asBf16 && p.dims.length === 2 ? p.dims[0]! * p.dims[1]! * 2 : ggmlTensorBytes(p.type, p.dims);
    bytes += p.name === "token_embd.weight" && !c.tieWordEmbeddings ? b / p.dims[1]! : b;
  }
  return bytes;
}

interface Rate {
  prefill: number;
  decode: number;
  load: number;
}

// biome-ignore lint/suspicious/noExplicitAny: node-llama-cpp is loaded dynamically (a dev dependency)
type Any = any;

/** llama.cpp on `path`: best of `repeats` runs of a `prompt`-token prefill then `decode` greedy steps. */
async function llamaCpp(
  llama: Any,
  path: string,
  prompt: number[],
  decode: number,
  threads: number,
): Promise<Rate> {
  const t0 = performance.now();
  const model = await llama.loadModel({ modelPath: path });
  const load = (performance.now() - t0) / 1000;
  const ctx = await model.createContext({ contextSize: 1024, batchSize: 512, threads });
  const seq = ctx.getSequence();
  let best: Rate = { prefill: 0, decode: 0, load };
  try {
    for (let r = 0; r < Math.max(1, env("HERD_BENCH_REPEATS", 3)); r++) {
      await seq.clearHistory();
      const s = performance.now();
      let first = 0;
      let n = 0;
      for await (const _ of seq.evaluate(prompt, { temperature: 0 })) {
        if (n === 0) first = performance.now();
        if (++n > decode) break;
      }
      const end = performance.now();
      const rate = {
        prefill: prompt.length / ((first - s) / 1000),
        decode: decode / ((end - first) / 1000),
        load,
      };
      best = {
        prefill: Math.max(best.prefill, rate.prefill),
        decode: Math.max(best.decode, rate.decode),
        load,
      };
    }
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
  return best;
}

export async function run(): Promise<void> {
  const name = knob("HERD_BENCH_PRESET");
  const c = preset(name);
  const threads = env("HERD_BENCH_THREADS", 2);
  const T = env("HERD_BENCH_PROMPT", 64);
  const D = env("HERD_BENCH_DECODE", 16);
  let mod: Any;
  try {
    mod = await import("node-llama-cpp");
  } catch (e) {
    console.log(
      `node-llama-cpp is not installed (${(e as Error).message.split("\n")[0]}): nothing to compare`,
    );
    return;
  }
  const llama = await mod.getLlama({
    gpu: false,
    build: "never",
    progressLogs: false,
    logLevel: mod.LlamaLogLevel.error,
  });
  const draw = new Rng(12345);
  const prompt = [c.bosTokenId ?? 0];
  while (prompt.length < T) prompt.push(draw.nextU32() % 128000);
  const root = mkdtempSync(join(tmpdir(), "herd-bench-llamacpp-"));
  const probe = new RooflineProbe(threads);
  const rows: {
    type: string;
    herd: Rate;
    lcpp: Rate;
    herdBytes: number;
    lcppBytes: number;
    herdDtype: string;
  }[] = [];
  try {
    console.log(
      `${name} shape (${paramCount(c).toLocaleString("en-US")} parameters), random weights; ${threads} threads each; ${T}-token prompt, then ${D} greedy decode steps; best of HERD_BENCH_REPEATS`,
    );
    probe.probe("before");
    for (const type of TYPES) {
      const path = join(root, `${type}.gguf`);
      const t0 = performance.now();
      const plan = writeTiled(path, c, type);
      console.log(`${type}: GGUF written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const h = runDecodeChild(path, "native", threads, { prompt: T, decode: D });
      const herd = {
        prefill: h.promptTokens / h.prefillSeconds,
        decode: h.decodeTokens / h.decodeSeconds,
        load: h.loadSeconds,
      };
      const lcpp = await llamaCpp(llama, path, prompt, D, threads);
      const cached = meanCachedPositions(T, D);
      const herdBytes =
        weightBytes(c, plan, type === "q4_k_m" && h.dtype === "bf16") + kvBytesPerToken(c, "f32") * cached;
      const lcppBytes = weightBytes(c, plan, false) + kvBytesPerToken(c, "bf16") * cached;
      rows.push({ type, herd, lcpp, herdBytes, lcppBytes, herdDtype: h.dtype });
      console.log(
        `  herd (${h.dtype}) prefill ${herd.prefill.toFixed(1)} decode ${herd.decode.toFixed(2)} tok/s · llama.cpp prefill ${lcpp.prefill.toFixed(1)} decode ${lcpp.decode.toFixed(2)} tok/s`,
      );
      rmSync(path, { force: true });
    }
    const bw = probe.probe("after");
    const spread = probe.spread();
    if (spread) console.log(spread);
    const w = [8, 10, 10, 12, 10, 10, 12, 10, 12, 12];
    console.log(
      row(
        [
          "type",
          "herd holds",
          "herd GB/t",
          "herd decode",
          "of roof",
          "lcpp GB/t",
          "lcpp decode",
          "of roof",
          "herd prefill",
          "lcpp prefill",
        ],
        w,
      ),
    );
    for (const r of rows) {
      const hr = bw / r.herdBytes;
      const lr = bw / r.lcppBytes;
      console.log(
        row(
          [
            r.type,
            r.herdDtype,
            (r.herdBytes / GB).toFixed(2),
            r.herd.decode.toFixed(2),
            `${((100 * r.herd.decode) / hr).toFixed(0)}%`,
            (r.lcppBytes / GB).toFixed(2),
            r.lcpp.decode.toFixed(2),
            `${((100 * r.lcpp.decode) / lr).toFixed(0)}%`,
            r.herd.prefill.toFixed(1),
            r.lcpp.prefill.toFixed(1),
          ],
          w,
        ),
      );
    }
  } finally {
    await llama.dispose();
    rmSync(root, { recursive: true, force: true });
  }
}
