// The layering of /work/shared/design.md, enforced: every import under src/ (static, `export … from`,
// dynamic `import()`, type-only ones too, as TypeScript's own pre-processor finds them) points at its own
// layer or one below it. The order, bottom to top: core · io · backends · tensor · tokenizer · data · model ·
// train · scale · generate · posttrain · eval · serve · recipe · cli. Beside the order, design.md's two finer
// rules: tokenizer/ and data/ do without tensor/ (and so backends/ and model/), and model/ reaches the
// kernels only through tensor/. A folder under src/ that is not in the order fails the test: a new layer
// must be placed in it (here and in design.md). Known exceptions are listed below, each with its reason;
// the test also fails when one of them is gone, so the list never outlives the import. And the kernels
// know no model: no file of src/backends/ or native/ names Llama.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import ts from "typescript";
import { repoPath } from "./helpers.js";

const ORDER = [
  "core",
  "io",
  "backends",
  "tensor",
  "tokenizer",
  "data",
  "model",
  "train",
  "scale",
  "generate",
  "posttrain",
  "eval",
  "serve",
  "recipe",
  "cli",
];

/**
 * Imports that break a rule today, as "from-file -> imported-file" (paths under src/). Keep it short:
 * fix an import rather than add it here.
 */
const EXCEPTIONS: Record<string, string> = {};

const SRC = repoPath("src");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [p] : [];
  });
}

/** The files under src/ that `file` imports (relative specifiers; packages and node: builtins are not layers). */
export function importsOf(file: string, text = readFileSync(file, "utf8")): string[] {
  const info = ts.preProcessFile(text, true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((s) => s.startsWith("."))
    .map((s) => relative(SRC, resolve(dirname(file), s)).replace(/\.js$/, ".ts"));
}

const layerOf = (path: string) => path.split("/")[0]!;

/** Each broken rule of one import, as [rule, text]. */
function violations(from: string, to: string): [string, string][] {
  const out: [string, string][] = [];
  const a = layerOf(from);
  const b = layerOf(to);
  if (ORDER.indexOf(b) > ORDER.indexOf(a))
    out.push(["order", `${from} imports ${to}: ${b}/ is a later stage than ${a}/`]);
  if ((a === "tokenizer" || a === "data") && ["backends", "tensor", "model"].includes(b))
    out.push(["no-tensor", `${from} imports ${to}: ${a}/ does not need ${b}/`]);
  if (a === "model" && b === "backends")
    out.push(["model-kernels", `${from} imports ${to}: model/ reaches kernels only through tensor/`]);
  return out;
}

function check(files: { path: string; text?: string }[]): { broken: string[]; excused: Set<string> } {
  const broken: string[] = [];
  const excused = new Set<string>();
  for (const f of files) {
    const from = relative(SRC, f.path);
    for (const to of importsOf(f.path, f.text)) {
      const key = `${from} -> ${to}`;
      for (const [rule, text] of violations(from, to)) {
        if (EXCEPTIONS[key] === rule) excused.add(key);
        else broken.push(text);
      }
    }
  }
  return { broken, excused };
}

test("layering: every folder under src/ is a layer of design.md's order", () => {
  const dirs = readdirSync(SRC, { withFileTypes: true });
  for (const d of dirs) {
    assert.ok(d.isDirectory(), `src/${d.name}: a file directly under src/ belongs to no layer`);
    assert.ok(
      ORDER.includes(d.name),
      `src/${d.name}/ is not in the layer order: place it (test and design.md)`,
    );
  }
});

test("layering: no file under src/ imports a later stage (listed exceptions aside)", () => {
  const { broken, excused } = check(sources(SRC).map((path) => ({ path })));
  assert.deepEqual(broken, [], `imports against the layering:\n${broken.join("\n")}`);
  const stale = Object.keys(EXCEPTIONS).filter((k) => !excused.has(k));
  assert.deepEqual(stale, [], "exceptions whose import is gone: remove them from EXCEPTIONS");
});

test("layering: the check sees an import of eval/ from train/, of every form", () => {
  const path = join(SRC, "train", "trainer.ts");
  const base = readFileSync(path, "utf8");
  for (const line of [
    'import { evaluateStep } from "../eval/heldout.js";',
    'import type { LongContextReport } from "../eval/longContext.js";',
    'export { pretrainEvaluator } from "../eval/pretrainEvaluator.js";',
    'const m = await import("../recipe/demo.js");',
  ]) {
    const { broken } = check([{ path, text: `${line}\n${base}` }]);
    assert.equal(broken.length, 1, line);
    assert.match(broken[0]!, /^train\/trainer\.ts imports (eval|recipe)\/.* is a later stage than train\//);
  }
  // A comment or a string that only mentions a path is not an import.
  assert.deepEqual(check([{ path, text: `// see "../eval/heldout.js"\n${base}` }]).broken, []);
});

test("kernels know no model: no Llama in src/backends/ or native/", () => {
  const files = [
    ...sources(join(SRC, "backends")),
    ...readdirSync(repoPath("native"))
      .filter((f) => /\.(cc|h|gyp)$/.test(f))
      .map((f) => repoPath("native", f)),
  ];
  assert.ok(files.length > 10);
  const named = files
    .filter((f) => /llama/i.test(readFileSync(f, "utf8")))
    .map((f) => relative(repoPath(), f));
  assert.deepEqual(named, [], "a backend file names Llama: model-shaped code belongs in src/model/");
});

// The addon's N-API code lives in its binding files only (napi.cc, napi_graph.cc, napi.h), apart from
// the kernels: no other native/*.cc or .h so much as names napi_* or node_api.h (comments included, so
// that a kernel file's comments do not lean on the binding's internals either).
const BINDINGS = ["napi.cc", "napi_graph.cc", "napi.h"];

test("the kernels know no N-API: only native/napi*.{cc,h} use napi_ or include node_api.h", () => {
  const native = readdirSync(repoPath("native")).filter((f) => /\.(cc|h)$/.test(f));
  for (const b of BINDINGS) assert.ok(native.includes(b), `native/${b} is gone: update BINDINGS`);
  const code = (f: string) => readFileSync(repoPath("native", f), "utf8");
  const kernels = native.filter((f) => !BINDINGS.includes(f));
  assert.ok(kernels.length > 8);
  const napi = kernels.filter((f) => /napi_|node_api\.h|NAPI_/.test(code(f)));
  assert.deepEqual(napi, [], "N-API code in a kernel file: it belongs in the binding files (native/napi.cc)");
  // The check sees a binding file's own N-API code.
  assert.match(code("napi.cc"), /napi_value/);
  assert.match(code("napi.h"), /#include <node_api\.h>/);
});
