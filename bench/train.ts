// Training benchmark: the `small` preset (~14M parameters) on fixed tokens, batch × seq tokens per
// step, forward (loss) and backward timed separately, then a whole optimiser step (forward, backward,
// clipping, AdamW), as training tokens/s and MFU — model FLOPs (src/train/mfu.ts: 6·N + 12·L·H·h_d·T
// per token for a step, a third of that forward, two thirds backward) over the measured f32 peak of
// the threads used (src/backends/peak.ts: clock × flops/cycle of the CPU's ISA × threads). Every
// backend except the js reference (wasm, and native when its addon loads) runs in the same process,
// then the native/wasm ratios are printed. Knobs: HERD_BENCH_TRAIN_SEQ, _BATCH, _REPS,
// HERD_BENCH_PRESET_TRAIN, HERD_THREADS (every core: 2 on the reference box); README's knobs table.

import { availableParallelism, cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { type Backend, backendByName, backendNames, setBackend } from "../src/backends/index.js";
import { backendThreads, cpuPeak } from "../src/backends/peak.js";
import { knob } from "../src/core/knobs.js";
import { Llama } from "../src/model/llama.js";
import { flopsPerToken, paramCount, preset } from "../src/model/presets.js";
import { initWeights } from "../src/model/weights.js";
import { backward, clearTape, scope } from "../src/tensor/index.js";
import { PretrainOptimizer } from "../src/train/optimizer.js";
import { trainStep } from "../src/train/trainer.js";
import { otherLoad } from "./engine.js";
import { env, row } from "./timing.js";

interface Result {
  fwd: number;
  bwd: number;
  step: number;
}

/** Median seconds of forward, backward and a whole step on the active backend. */
function measure(name: string, B: number, T: number, reps: number): Result {
  const c = preset(name);
  const model = new Llama(c, initWeights(c, { seed: 1 }), "bench");
  const opt = new PretrainOptimizer(model.parameters());
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + 13) % c.vocabSize);
  const targets = Int32Array.from({ length: B * T }, (_, i) => ids[(i + 1) % ids.length]!);
  const docIds = new Int32Array(B * T);
  const fwd: number[] = [];
  const bwd: number[] = [];
  for (let r = 0; r <= reps; r++) {
    scope(() => {
      const t0 = performance.now();
      const loss = model.loss(ids, targets, { batch: B, docIds });
      loss.item();
      const t1 = performance.now();
      backward(loss);
      const t2 = performance.now();
      if (r > 0) {
        fwd.push((t1 - t0) / 1000);
        bwd.push((t2 - t1) / 1000);
      }
    });
    clearTape();
    opt.zeroGrad();
  }
  const batch = { ids, targets, docIds, batch: B, seqLen: T };
  trainStep(model, opt, [batch], 1e-4);
  const step: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    trainStep(model, opt, [batch], 1e-4);
    step.push((performance.now() - t0) / 1000);
  }
  opt.dispose();
  model.dispose();
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { fwd: median(fwd), bwd: median(bwd), step: median(step) };
}

export async function run(): Promise<void> {
  const name = knob("HERD_BENCH_PRESET_TRAIN");
  const T = env("HERD_BENCH_TRAIN_SEQ", 256);
  const B = env("HERD_BENCH_TRAIN_BATCH", 4);
  const reps = env("HERD_BENCH_TRAIN_REPS", 5);
  const c = preset(name);
  const tokens = B * T;
  const f = flopsPerToken(c, T);
  console.log(
    `machine: ${cpus()[0]?.model ?? "?"}, ${availableParallelism()} cores, Node ${process.version}; ` +
      `preset ${name} (${(paramCount(c) / 1e6).toFixed(1)}M params), batch ${B} × seq ${T}; ` +
      `model FLOPs/token: forward ${(f.forward / 1e6).toFixed(1)}M, training ${(f.training / 1e6).toFixed(1)}M`,
  );
  const busy = otherLoad(500);
  if (busy !== null && busy > 0.1)
    console.log(
      `warning: other processes kept ${(100 * busy).toFixed(0)}% of the CPU busy; figures will be low`,
    );
  const widths = [8, 8, 34, 10, 10, 8];
  console.log(row(["backend", "part", "peak", "ms", "tok/s", "MFU %"], widths));
  const results = new Map<string, Result>();
  const backends: Backend[] = backendNames()
    .filter((n) => n !== "js")
    .map((n) => backendByName(n));
  for (const b of backends) {
    setBackend(b);
    const threads = backendThreads(b);
    const peak = cpuPeak(threads, b);
    const r = measure(name, B, T, reps);
    results.set(b.name, r);
    const peakText = `${threads}×${(peak.clockHz / 1e9).toFixed(2)}GHz×${peak.flopsPerCycle} (${peak.isa}) ${(peak.flops / 1e9).toFixed(0)}G`;
    const parts: [string, number, number][] = [
      ["forward", r.fwd, f.forward],
      ["backward", r.bwd, f.training - f.forward],
      ["step", r.step, f.training],
    ];
    for (const [part, secs, perToken] of parts)
      console.log(
        row(
          [
            b.name,
            part,
            peakText,
            (secs * 1000).toFixed(0),
            (tokens / secs).toFixed(0),
            ((100 * perToken * tokens) / secs / peak.flops).toFixed(2),
          ],
          widths,
        ),
      );
  }
  const w = results.get("wasm");
  const n = results.get("native");
  if (w && n)
    console.log(
      `native/wasm speed: forward ${(w.fwd / n.fwd).toFixed(2)}×, backward ${(w.bwd / n.bwd).toFixed(2)}×, ` +
        `step ${(w.step / n.step).toFixed(2)}×`,
    );
  else console.log("native/wasm ratio: needs both backends (the native addon is not built here)");
}
