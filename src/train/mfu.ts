// Model FLOPs utilisation of a training run: model FLOPs per second over the measured f32 peak of the
// cores the backend uses (src/backends/peak.ts). Model FLOPs per token, as PaLM (appendix B) and nanoGPT
// count them, forward + backward = 3 × forward:
//   6·N + 12·L·H·h_d·T
// N = the weights multiplied per token: every layer's attention and FFN matrices and the output head
// (not the embedding lookup, a gather, nor the RMSNorm vectors); T = the sequence length. The attention
// term is PaLM's, with no causal discount (a kernel that skips the masked half does half of it), so the
// figure is comparable with published MFUs. The peak is measured once per run and cached in the run
// folder (peak.json); a resume on the same backend and thread count reuses it.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Backend } from "../backends/backend.js";
import { backendThreads, type CpuPeak, cpuPeak } from "../backends/peak.js";
import { writeFileAtomic } from "../io/atomic.js";
import type { LlamaConfig } from "../model/config.js";
import { flopsPerToken } from "../model/presets.js";

export const PEAK_FILE = "peak.json";

/** Training (forward + backward) model FLOPs per token at sequence length `seqLen`. */
export function trainingFlopsPerToken(c: LlamaConfig, seqLen: number): number {
  return flopsPerToken(c, seqLen).training;
}

export interface RunPeak extends CpuPeak {
  backend: string;
}

/** The peak of `backend` for the run in `runDir`: peak.json when it matches, else measured and saved. */
export function runPeak(runDir: string, backend: Backend): RunPeak {
  const path = join(runDir, PEAK_FILE);
  const threads = backendThreads(backend);
  if (existsSync(path)) {
    try {
      const p = JSON.parse(readFileSync(path, "utf8")) as RunPeak;
      if (p.backend === backend.name && p.threads === threads && p.flops > 0) return p;
    } catch {
      // unreadable: measure again
    }
  }
  const p: RunPeak = { ...cpuPeak(threads, backend), backend: backend.name };
  writeFileAtomic(path, `${JSON.stringify(p, null, 2)}\n`);
  return p;
}
