// Quantised decode benchmark: a Llama 3.2 1B-shaped checkpoint with random bf16 weights (as bench/model.ts
// makes it, in a temporary directory deleted afterwards) is quantised by `herd quantize`'s code to Q8_0
// and Q4_0, and each is asked to continue a short prompt in its own child process: decode tokens/s for
// bf16 on the wasm backend and bf16, Q8_0 and Q4_0 on the native backend (the default one), side by side
// with ratios, each beside its roofline (bytes of weights one decode step reads over the best streaming
// read bandwidth measured before and after the runs, bench/decode.ts RooflineProbe), and the peak
// resident memory (VmHWM) per format. Each child decodes HERD_BENCH_REPEATS times and keeps its best
// run (bench/decode.ts).
//
// Knobs: HERD_BENCH_PROMPT (short by default, so decode is the weights' GEMVs, not attention over a long
// cache), HERD_BENCH_DECODE, HERD_BENCH_THREADS, HERD_BENCH_PRESET: defaults in README's knobs table.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { knob } from "../src/core/knobs.js";
import { writeHFCheckpoint } from "../src/model/checkpoint/index.js";
import { type LlamaConfig, toHFConfig } from "../src/model/config.js";
import { decodeBytesPerToken, paramCount, preset } from "../src/model/presets.js";
import { quantizeCheckpoint } from "../src/model/quantize.js";
import { EMBED, initWeights, weightShapes } from "../src/model/weights.js";
import { type QuantFormat, quantRowBytes } from "../src/tensor/quant.js";
import { type ChildResult, GB, kvBytesRead, RooflineProbe, runDecodeChild } from "./decode.js";
import { env, row } from "./timing.js";

/** Bytes of weights one decode step reads with every matrix in `format` (norms f32; see presets.ts). */
function quantBytesPerToken(c: LlamaConfig, format: QuantFormat): number {
  let bytes = 0;
  for (const [name, shape] of weightShapes(c)) {
    if (shape.length === 1) bytes += shape[0]! * 4;
    else if (name !== EMBED || c.tieWordEmbeddings) bytes += shape[0]! * quantRowBytes(format, shape[1]!);
    else bytes += quantRowBytes(format, shape[1]!); // an untied embedding: one row
  }
  return bytes;
}

export async function run(): Promise<void> {
  const name = knob("HERD_BENCH_PRESET");
  const config = preset(name);
  const threads = env("HERD_BENCH_THREADS", 2);
  const root = mkdtempSync(join(tmpdir(), "herd-bench-quant-"));
  const dirs: Record<string, string> = {
    bf16: join(root, "bf16"),
    q8_0: join(root, "q8_0"),
    q4_0: join(root, "q4_0"),
  };
  try {
    let t0 = performance.now();
    {
      const weights = initWeights(config, { seed: 1, dtype: "bf16" });
      await writeHFCheckpoint(dirs.bf16!, toHFConfig(config, "bf16"), weights, { dtype: "bf16" });
      for (const t of weights.values()) t.dispose();
    }
    console.log(
      `${name}-shaped checkpoint, random weights: ${paramCount(config).toLocaleString("en-US")} parameters, bf16, made and written in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    for (const format of ["q8_0", "q4_0"] as const) {
      t0 = performance.now();
      const rep = await quantizeCheckpoint(dirs.bf16!, dirs[format]!, format);
      console.log(
        `quantised to ${format} in ${((performance.now() - t0) / 1000).toFixed(1)} s: weights ${(rep.bytesIn / GB).toFixed(2)} → ${(rep.bytesOut / GB).toFixed(2)} GB`,
      );
    }
    const bandwidth = new RooflineProbe(threads);
    bandwidth.probe("before");
    console.log(
      `HERD_THREADS=${threads}; ${env("HERD_BENCH_PROMPT", 32)}-token prompt, then ${env("HERD_BENCH_DECODE", 16)} greedy decode steps`,
    );

    const runs: [string, string][] = [
      ["wasm", "bf16"],
      ["native", "bf16"],
      ["native", "q8_0"],
      ["native", "q4_0"],
    ];
    const results: (ChildResult & { rate: number; roofline: number; bytes: number })[] = [];
    for (const [backend, format] of runs) {
      const r = runDecodeChild(dirs[format]!, backend, threads, { prompt: 32, decode: 16 });
      const weights =
        format === "bf16"
          ? decodeBytesPerToken(config, "bf16")
          : quantBytesPerToken(config, format as QuantFormat);
      const bytes = weights + kvBytesRead(config, r.promptTokens, r.decodeTokens);
      results.push({ ...r, rate: r.decodeTokens / r.decodeSeconds, roofline: 0, bytes });
    }
    const bw = bandwidth.probe("after");
    const spread = bandwidth.spread();
    if (spread) console.log(spread);
    console.log(
      `roofline: bytes read per token (weights and the f32 KV cache) over the best read bandwidth (${(bw / GB).toFixed(1)} GB/s)`,
    );
    for (const r of results) r.roofline = bw / r.bytes;
    const wasm = results[0]!.rate;
    const nativeBf16 = results[1]!.rate;
    const w = [8, 8, 10, 14, 10, 8, 12, 12, 14, 16, 8];
    console.log(
      row(
        [
          "backend",
          "weights",
          "GB/token",
          "decode tok/s",
          "roofline",
          "of it",
          "× bf16 nat",
          "× bf16 wasm",
          "RSS load/peak",
          "prefill tok/s",
          "load s",
        ],
        w,
      ),
    );
    for (const r of results)
      console.log(
        row(
          [
            r.backend,
            r.dtype,
            (r.bytes / GB).toFixed(2),
            r.rate.toFixed(2),
            r.roofline.toFixed(1),
            `${((100 * r.rate) / r.roofline).toFixed(0)}%`,
            `${(r.rate / nativeBf16).toFixed(2)}×`,
            `${(r.rate / wasm).toFixed(2)}×`,
            `${(r.rssAfterLoadBytes / GB).toFixed(2)}/${(r.maxRssBytes / GB).toFixed(2)} GB`,
            (r.promptTokens / r.prefillSeconds).toFixed(1),
            r.loadSeconds.toFixed(1),
          ],
          w,
        ),
      );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
