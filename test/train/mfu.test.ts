// MFU: the FLOPs per training token are PaLM's 6·N + 12·L·H·h_d·T (counted here by hand for the tiny
// model), the peak is clock × flops/cycle of the ISA × threads, every metrics record carries the MFU
// these give, and the peak is measured once per run folder (peak.json) and reused on a resume.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { getBackend } from "../../src/backends/index.js";
import { backendThreads, cpuIsa, cpuPeak, FLOPS_PER_CYCLE, measureClock } from "../../src/backends/peak.js";
import { PEAK_FILE, trainingFlopsPerToken } from "../../src/train/mfu.js";
import { modelConfig, pretrain } from "../../src/train/trainer.js";
import { corpusShard, TINY, tempDir, tinyConfig } from "./fixture.js";

test("training FLOPs per token: 6·N (matrices and output head) + 12·L·H·h_d·T", () => {
  const dir = tempDir();
  const c = modelConfig(tinyConfig(dir, corpusShard(dir, 2000)));
  const d = TINY.hiddenSize;
  const q = TINY.numAttentionHeads * TINY.headDim;
  const kv = TINY.numKeyValueHeads * TINY.headDim;
  const perLayer = d * q + 2 * d * kv + q * d + 3 * d * TINY.intermediateSize;
  const N = TINY.numHiddenLayers * perLayer + TINY.vocabSize * d;
  for (const T of [1, 32, 100])
    assert.equal(trainingFlopsPerToken(c, T), 6 * N + 12 * TINY.numHiddenLayers * q * T);
});

test("peak: clock × flops/cycle of the ISA × threads", () => {
  const clock = measureClock();
  assert.ok(clock > 3e8 && clock < 7e9, `clock ${clock}`);
  assert.deepEqual(FLOPS_PER_CYCLE, { avx512: 64, avx2: 32, generic: 16 });
  const p = cpuPeak(2);
  assert.equal(p.isa, cpuIsa());
  // Measured where the native addon loads (Zen 4 runs AVX-512 at 32, not the table's 64), a power of two.
  assert.ok(p.flopsPerCycle <= FLOPS_PER_CYCLE[p.isa] && [8, 16, 32, 64].includes(p.flopsPerCycle));
  assert.equal(p.flops, p.clockHz * p.flopsPerCycle * 2);
  const own = cpuPeak(1, { isa: "avx2" } as never);
  assert.equal(own.isa, "avx2", "a backend's own ISA wins");
  assert.ok(own.flopsPerCycle <= 32);
});

test("metrics carry MFU; the peak is measured once per run folder and reused", async () => {
  const dir = tempDir();
  const shard = corpusShard(dir, 20000);
  const cfg = tinyConfig(dir, shard, { stages: [{ kind: "initial", steps: 3, seqLen: 32, batch: 2 }] });
  const res = await pretrain(cfg);
  const peakPath = join(res.runDir, PEAK_FILE);
  const saved = JSON.parse(readFileSync(peakPath, "utf8"));
  assert.equal(saved.backend, getBackend().name);
  assert.equal(saved.threads, backendThreads(getBackend()));
  assert.deepEqual(res.peak, saved);
  const perToken = trainingFlopsPerToken(res.model.config, 32);
  for (const m of res.history) {
    assert.ok(m.mfu > 0 && m.mfu < 1, `mfu ${m.mfu}`);
    const expected = (m.tokensPerSec * perToken) / saved.flops;
    assert.ok(Math.abs(m.mfu / expected - 1) < 1e-9, `${m.mfu} vs ${expected}`);
  }
  res.model.dispose();
  // A later run in the same folder takes the peak from peak.json instead of probing again.
  writeFileSync(peakPath, JSON.stringify({ ...saved, flops: saved.flops / 1000 }));
  const more = await pretrain(
    { ...cfg, stages: [{ ...cfg.stages[0]!, steps: 5 }] },
    { allowConfigChange: true },
  );
  assert.equal(more.resumedFrom, 3);
  assert.equal(more.peak.flops, saved.flops / 1000);
  const m = more.history[0]!;
  assert.ok(Math.abs(m.mfu / ((m.tokensPerSec * perToken) / (saved.flops / 1000)) - 1) < 1e-9);
  more.model.dispose();
});
