// src/core/knobs.ts: every HERD_* variable the sources read is declared; values parse by their kind;
// a bad value is the one error (variable, value, what is allowed); reads are kept until reloadKnobs();
// and the README's table is exactly the one the declarations make.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  checkKnobs,
  KNOBS,
  type KnobName,
  knob,
  knobTable,
  reloadKnobs,
  withKnobTable,
} from "../../src/core/knobs.js";
import { repoPath } from "../helpers.js";

const saved = { ...process.env };
after(() => {
  for (const k of Object.keys(process.env)) if (k.startsWith("HERD_") && !(k in saved)) delete process.env[k];
  for (const [k, v] of Object.entries(saved)) if (k.startsWith("HERD_")) process.env[k] = v;
  reloadKnobs();
});

/** Read `name` with process.env[name] = raw (undefined: unset). */
function read<N extends KnobName>(name: N, raw: string | undefined) {
  if (raw === undefined) delete process.env[name];
  else process.env[name] = raw;
  reloadKnobs();
  return knob(name);
}

test("values parse by their kind; unset and empty are the default", () => {
  assert.equal(read("HERD_THREADS", "3"), 3);
  assert.equal(read("HERD_THREADS", undefined), null);
  assert.equal(read("HERD_THREADS", ""), null);
  assert.equal(read("HERD_NATIVE_CACHE_MB", undefined), 1024);
  assert.equal(read("HERD_NATIVE_CACHE_MB", "0"), 0);
  assert.equal(read("HERD_FUSED_DECODE", "0"), false);
  assert.equal(read("HERD_FUSED_DECODE", undefined), true);
  assert.equal(read("HERD_BACKEND", "wasm"), "wasm");
  assert.deepEqual(read("HERD_GEMM_BLOCKING", "20,40,60"), [20, 40, 60]);
  assert.deepEqual(read("HERD_DATA_CRASH", "4:10"), [4, 10]);
  assert.deepEqual(read("HERD_BENCH_BACKENDS", "native,wasm"), ["native", "wasm"]);
  assert.equal(read("HERD_BENCH_DATA_MB", "0.5"), 0.5);
  assert.equal(read("HERD_BENCH_PRESET", "tiny"), "tiny");
});

test("a bad value is one error naming the variable, its value and what is allowed", () => {
  const cases: [KnobName, string, string][] = [
    ["HERD_THREADS", "abc", "an integer from 1 to 256"],
    ["HERD_THREADS", "0", "an integer from 1 to 256"],
    ["HERD_THREADS", "2.5", "an integer from 1 to 256"],
    ["HERD_THREADS", " 2", "an integer from 1 to 256"],
    ["HERD_NATIVE_PACK_MB", "-1", "an integer from 0 to 1048576"],
    ["HERD_FUSED_DECODE", "no", "0 or 1"],
    ["HERD_DEBUG", "true", "0 or 1"],
    ["HERD_BACKEND", "cuda", "one of js, wasm, native"],
    ["HERD_NATIVE_ISA", "sse", "one of generic, avx2, avx512, best"],
    ["HERD_GEMM_BLOCKING", "20,40", "mc,kc,nc, integers from 1 to 65536"],
    ["HERD_GEMM_BLOCKING", "20,40,0", "mc,kc,nc, integers from 1 to 65536"],
    ["HERD_DATA_CRASH", "4", "STAGE:N, integers from 0 to 2147483647"],
    ["HERD_BENCH_BACKENDS", "wasm,gpu", "a comma-separated list of wasm, native-ops, native"],
    ["HERD_BENCH_DATA_MB", "lots", "a number from 0.001 to 1048576"],
  ];
  for (const [name, raw, what] of cases) {
    assert.throws(() => read(name, raw), { message: `${name}='${raw}': expected ${what}` }, `${name}=${raw}`);
    read(name, saved[name]);
  }
  process.env.HERD_THREADS = "x";
  reloadKnobs();
  assert.throws(() => checkKnobs(), { message: "HERD_THREADS='x': expected an integer from 1 to 256" });
  delete process.env.HERD_THREADS;
  reloadKnobs();
});

test("a value is read once and kept until reloadKnobs()", () => {
  assert.equal(read("HERD_THREADS", "2"), 2);
  process.env.HERD_THREADS = "5";
  assert.equal(knob("HERD_THREADS"), 2);
  reloadKnobs();
  assert.equal(knob("HERD_THREADS"), 5);
  read("HERD_THREADS", saved.HERD_THREADS);
});

test("every HERD_ variable the sources read is declared (and every declared one is read)", () => {
  const seen = new Set<string>();
  const walk = (dir: string) => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) {
        if (f !== "build" && f !== "fixtures") walk(p);
      } else if (/\.(ts|mjs|cc|h)$/.test(f) && !p.endsWith(join("core", "knobs.ts")))
        for (const m of readFileSync(p, "utf8").matchAll(/\bHERD_[A-Z0-9_]*[A-Z0-9](?![\w*])/g))
          seen.add(m[0]);
    }
  };
  for (const d of ["src", "bench", "scripts", "native"]) walk(repoPath(d));
  seen.delete("HERD_X86"); // a C++ macro (native/herd.h), not a variable
  const declared = new Set(Object.keys(KNOBS));
  assert.deepEqual([...seen].filter((n) => !declared.has(n)).sort(), [], "read but not declared");
  assert.deepEqual([...declared].filter((n) => !seen.has(n)).sort(), [], "declared but never read");
});

test("docs/knobs.md's table is the one the declarations make (node scripts/readme-knobs.mjs)", () => {
  const readme = readFileSync(repoPath("docs", "knobs.md"), "utf8");
  assert.equal(withKnobTable(readme), readme);
  assert.ok(readme.includes(knobTable()));
  for (const name of Object.keys(KNOBS)) assert.ok(readme.includes(`| \`${name}\` |`), name);
});
