// The f32 peak's flops per cycle (src/backends/peak.ts): measured by the native FMA probe where the addon
// loads, so a core whose AVX-512 FMAs run in 256-bit halves (Zen 4) or on one 512-bit unit counts 32,
// not 64; the table (no addon) knows Zen 4 too. The probe needs the addon; the table tests run anywhere.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { nativeAvailable, nativeFmaFlopsPerCycle } from "../../src/backends/native/index.js";
import {
  cpuIsa,
  cpuPeak,
  FLOPS_PER_CYCLE,
  flopsPerCycle,
  tableFlopsPerCycle,
} from "../../src/backends/peak.js";

const info = existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "";
const zen4 = /^vendor_id\s*:\s*AuthenticAMD/m.test(info) && /^cpu family\s*:\s*25$/m.test(info);

test("the table: AVX-512 is 32 flops/cycle on AMD family 25 (Zen 4), 64 elsewhere", () => {
  assert.equal(tableFlopsPerCycle("avx512"), zen4 ? 32 : 64);
  assert.equal(tableFlopsPerCycle("avx2"), FLOPS_PER_CYCLE.avx2);
  assert.equal(tableFlopsPerCycle("generic"), FLOPS_PER_CYCLE.generic);
});

test("the FMA probe measures a power of two that the peak uses", {
  skip: !nativeAvailable() && "native addon not built",
}, () => {
  const isa = cpuIsa();
  if (isa === "generic") return;
  const raw = nativeFmaFlopsPerCycle(isa);
  assert.ok(raw !== null, "the probe runs wherever the addon loads on an x86 CPU with FMA");
  const f = flopsPerCycle(isa);
  assert.equal(f.from, "measured");
  assert.ok([8, 16, 32, 64].includes(f.flopsPerCycle), `${f.flopsPerCycle}`);
  assert.ok(
    Math.abs(Math.log2(raw / f.flopsPerCycle)) < 0.25,
    `measured ${raw} flops/cycle, far from ${f.flopsPerCycle}`,
  );
  const p = cpuPeak(1);
  assert.equal(p.flopsPerCycle, f.flopsPerCycle);
  assert.equal(p.flopsPerCycleFrom, "measured");
  if (zen4 && isa === "avx512") assert.equal(p.flopsPerCycle, 32, "Zen 4 runs 512-bit FMAs in two halves");
});
