// The documentation's commands, run: every command line in the ```sh blocks of README.md and of the pages
// under docs/ (PAGES, in that order) is executed in order, in one fresh sandbox directory, by bash, with
// `herd` (and `npx herd`) on PATH as this build's CLI, so a page that drifts from the CLI fails CI. A
// ```yaml block right after a `<!-- file: NAME -->` line is written to NAME in the sandbox first (the
// pipeline and pre-training configs of docs/ are the ones run). A command's trailing `# → TEXT` comment is its expected standard output.
//
// Every ```ts block is a program, run too: transpiled by TypeScript, written as an .mjs file in the
// sandbox, where `node_modules/herd` links to this repository, so its `herd/...` imports resolve through
// package.json's `exports` as in a user's project; a block's `// → TEXT` comments are, in order, the
// lines it prints (compared without whitespace). The blocks are also type-checked against the entry
// points' sources. A block that cannot run says so on the line before it: `<!-- not run: REASON -->`.
//
// Inputs the README names are made here, small (SANDBOX below): `Llama-3.2-1B` and
// `Llama-3.2-1B-Instruct` stand for real checkpoints (the README says so) and are tiny models of the same
// format — HF files, the 128,256-token Llama 3 vocabulary, 3.2's RoPE scaling — with random weights.
// Commands of the harness itself (`npm ci`, `npm test`, `npm start`, `npm run bench`) are not run here:
// they are checked against what runs them (.ci/run, test/cli/npmStart.test.ts, bench/run.ts's suites).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import ts from "typescript";
import { TokenShardWriter } from "../../src/data/shards.js";
import { LLAMA3_STOP_IDS, llama3RopeScaling } from "../../src/model/config.js";
import { Llama } from "../../src/model/llama.js";
import { saveModel } from "../../src/model/load.js";
import { preset } from "../../src/model/presets.js";
import { initWeights } from "../../src/model/weights.js";
import { repoPath } from "../helpers.js";

/** The pages whose commands and examples run, in order (a later page may use what an earlier one made). */
export const PAGES = [
  "README.md",
  "docs/api.md",
  "docs/data.md",
  "docs/pretrain.md",
  "docs/posttrain.md",
  "docs/eval.md",
  "docs/knobs.md",
];

export interface ReadmeItem {
  /** 1-based line in its page. */
  line: number;
  /** The page (PAGES), set by pageItems. */
  page?: string;
  kind: "command" | "file" | "script";
  /** The command (continuation lines joined), the file's text, or the script's TypeScript source. */
  text: string;
  /** For a file: its path in the sandbox. */
  path?: string;
  /** For a command: its `# → ...` expected output. */
  expect?: string;
  /** For a script: the lines its `// → ...` comments expect it to print, in order. */
  prints?: string[];
  /** For a script marked `<!-- not run: REASON -->`: the reason. */
  notRun?: string;
}

/** The commands and files of a README, in order. */
export function readmeItems(md: string): ReadmeItem[] {
  const lines = md.split("\n");
  const items: ReadmeItem[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!fence) continue;
    const lang = fence[1]!;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^```\s*$/.test(lines[end]!)) end++;
    if (end === lines.length) throw new Error(`line ${i + 1}: code block never closed`);
    const body = lines.slice(start, end);
    const marker = /^<!-- file: (\S+) -->$/.exec(lines[i - 1] ?? "");
    const notRun = /^<!-- not run: (.+) -->$/.exec(lines[i - 1] ?? "");
    if (marker) items.push({ line: start + 1, kind: "file", path: marker[1]!, text: `${body.join("\n")}\n` });
    else if (lang === "ts") {
      const prints = body.flatMap((l) => {
        const m = /\/\/\s*→\s*(.*)$/.exec(l);
        return m ? [m[1]!.trim()] : [];
      });
      items.push({
        line: start + 1,
        kind: "script",
        text: `${body.join("\n")}\n`,
        prints,
        ...(notRun ? { notRun: notRun[1]! } : {}),
      });
    } else if (lang === "sh") {
      for (let j = 0; j < body.length; j++) {
        const first = j;
        let text = body[j]!;
        while (text.endsWith("\\") && j + 1 < body.length) text = `${text.slice(0, -1)} ${body[++j]!.trim()}`;
        if (text.trim() === "" || text.trim().startsWith("#")) continue;
        const arrow = /\s#\s*→\s*(.*)$/.exec(text);
        items.push({ line: start + first + 1, kind: "command", text, expect: arrow?.[1]?.trim() });
      }
    }
    i = end;
  }
  return items;
}

/** Every page's items, in PAGES order, each tagged with its page. */
export function pageItems(): ReadmeItem[] {
  return PAGES.flatMap((page) =>
    readmeItems(readFileSync(repoPath(...page.split("/")), "utf8")).map((i) => ({ ...i, page })),
  );
}

/** `README.md:12`, `docs/api.md:40`: where an item is. */
const whereOf = (i: ReadmeItem) => `${i.page ?? "README.md"}:${i.line}`;

/** A file name for an item's example, unique across pages. */
const exampleName = (i: ReadmeItem) => `example-${(i.page ?? "README.md").replace(/[/.]/g, "_")}-${i.line}`;

/** What the harness commands are checked against, instead of being run (they are the harness). */
function checkHarnessCommand(cmd: string, where: string): void {
  const code = cmd.replace(/\s#.*$/, "").trim();
  for (const part of code.split("&&").map((p) => p.trim())) {
    if (part === "npm ci" || part === "npm test") {
      const ci = readFileSync(repoPath(".ci", "run"), "utf8");
      assert.ok(
        ci.includes(part === "npm ci" ? "npm ci" : "\nnpm test"),
        `${where}: .ci/run does not run '${part}'`,
      );
    } else if (part === "npm start") {
      assert.ok(
        existsSync(repoPath("test", "cli", "npmStart.test.ts")),
        `${where}: npm start has no end-to-end test`,
      );
    } else if (/^npm run bench( |$)/.test(part)) {
      const registered = readFileSync(repoPath("bench", "run.ts"), "utf8");
      for (const suite of part
        .replace(/^npm run bench\s*(--)?/, "")
        .trim()
        .split(/\s+/)
        .filter(Boolean))
        assert.ok(registered.includes(`register("${suite}"`), `${where}: bench has no suite '${suite}'`);
    } else assert.fail(`${where}: '${part}' is an npm command this test does not know how to check`);
  }
}

/** Commands that cannot run on one machine; each says what covers it instead. */
const NEEDS_ELSEWHERE: { pattern: RegExp; why: string }[] = [
  {
    pattern: /--executor slurm/,
    why: "needs a Slurm cluster; test/data/slurm.test.ts runs the executor in CI",
  },
];

/** A tiny model in the format of a real Llama 3.2 checkpoint (HF files, 128,256-token vocabulary). */
async function llama32StandIn(dir: string, seed: number): Promise<void> {
  const c = {
    ...preset("llama3.2-1b"),
    hiddenSize: 32,
    intermediateSize: 64,
    numHiddenLayers: 2,
    numAttentionHeads: 2,
    numKeyValueHeads: 1,
    headDim: 16,
    maxPositionEmbeddings: 1024,
    ropeScaling: llama3RopeScaling(32),
    bosTokenId: 128000,
    eosTokenIds: [...LLAMA3_STOP_IDS],
  };
  const model = new Llama(c, initWeights(c, { seed }), "init");
  try {
    await saveModel(dir, model, { dtype: "bf16" });
  } finally {
    model.dispose();
  }
}

/** The inputs the README's commands name, made small in `dir`. */
async function makeSandbox(dir: string): Promise<void> {
  symlinkSync(repoPath("test"), join(dir, "test"));
  // A user's project with herd installed: `herd/...` resolves through package.json's exports.
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(repoPath(), join(dir, "node_modules", "herd"));
  const carroll = readFileSync(repoPath("test", "fixtures", "data", "books", "carroll-excerpt.txt"), "utf8");
  const paragraphs = carroll
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter((p) => p.length > 200);
  const put = (path: string, data: string | Uint8Array) => {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), data);
  };
  put("book.txt", carroll);
  put("corpus/part-1.txt", paragraphs.slice(0, paragraphs.length / 2).join("\n\n"));
  put("corpus/part-2.txt", paragraphs.slice(paragraphs.length / 2).join("\n\n"));
  put("data/notes.jsonl", paragraphs.map((text, i) => `${JSON.stringify({ id: `n${i}`, text })}\n`).join(""));
  // A crawl with exact and near duplicates.
  const docs = paragraphs.flatMap((text, i) => {
    const d = [{ id: `d${i}`, url: `https://example.org/${i}`, text }];
    if (i % 3 === 0) d.push({ id: `d${i}-copy`, url: `https://mirror.example.net/${i}`, text: `${text} ` });
    return d;
  });
  put("crawl.jsonl.gz", gzipSync(docs.map((d) => `${JSON.stringify(d)}\n`).join("")));
  put("crawl/part-1.jsonl.gz", gzipSync(docs.map((d) => `${JSON.stringify(d)}\n`).join("")));
  copyFileSync(
    repoPath("test", "fixtures", "data", "web", "resiliparse-CC-MAIN-2020-34-sample.warc.gz"),
    join(dir, "pages.warc.gz"),
  );
  copyFileSync(join(dir, "pages.warc.gz"), join(dir, "crawl", "part-2.warc.gz"));
  // Byte-level token shards for the pre-training config (its vocabulary of 4,096 holds the 256 bytes).
  for (const [name, list] of [
    ["data/main.tok", paragraphs],
    ["data/high-quality.tok", paragraphs.slice(0, 12)],
  ] as const) {
    const w = new TokenShardWriter(join(dir, name), 256);
    for (const p of list) w.addDocument(Buffer.from(`${p}\n`, "utf8"));
    w.close();
  }
  await llama32StandIn(join(dir, "Llama-3.2-1B"), 1);
  await llama32StandIn(join(dir, "Llama-3.2-1B-Instruct"), 2);
  // `herd` and `npx herd` run this build's CLI.
  const bin = join(dir, ".bin");
  mkdirSync(bin);
  const cli = repoPath("dist", "src", "cli", "main.js");
  writeFileSync(join(bin, "herd"), `#!/bin/sh\nexec "${process.execPath}" "${cli}" "$@"\n`);
  writeFileSync(
    join(bin, "npx"),
    `#!/bin/sh\nif [ "$1" = herd ]; then shift; exec "${join(bin, "herd")}" "$@"; fi\necho "npx $1: not herd" >&2; exit 127\n`,
  );
  chmodSync(join(bin, "herd"), 0o755);
  chmodSync(join(bin, "npx"), 0o755);
}

/** A README example as the JavaScript module node runs. */
function transpile(source: string): string {
  return ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText;
}

/** Type errors of the README's examples, checked against the sources of the entry points they import. */
export function exampleTypeErrors(items: ReadmeItem[], dir: string): string[] {
  const files = items
    .filter((i) => i.kind === "script" && !i.notRun)
    .map((i) => {
      const f = join(dir, `${exampleName(i)}.ts`);
      writeFileSync(f, `${i.text}export {};\n`);
      return f;
    });
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ["lib.es2023.d.ts"],
    types: ["node"],
    typeRoots: [repoPath("node_modules", "@types")],
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    resolveJsonModule: true,
    paths: { "herd/*": [repoPath("src", "*", "index.ts")] },
  });
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file && files.includes(d.file.fileName))
    .map((d) => {
      const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
      const item = items.find((i) => d.file!.fileName.endsWith(`${exampleName(i)}.ts`));
      return `${item ? whereOf(item) : d.file!.fileName}+${line}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
    });
}

/** Standard input for interactive commands: a chat says one thing, then ends. */
function stdinFor(cmd: string): string {
  return /^herd chat /.test(cmd) ? "Hello! Who are you?\n/exit\n" : "";
}

test("README.md and docs/: every command in their shell blocks runs as written", async (t) => {
  const items = pageItems();
  assert.ok(items.filter((i) => i.kind === "command").length >= 20, "the pages' commands were found");
  for (const page of PAGES.slice(0, 4))
    assert.ok(
      items.some((i) => i.page === page && i.kind !== "file"),
      `${page}: no commands or examples found`,
    );
  const dir = mkdtempSync(join(tmpdir(), "herd-readme-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await makeSandbox(dir);
  const env = { ...process.env, PATH: `${join(dir, ".bin")}:${process.env.PATH}`, HERD_THREADS: "2" };
  for (const item of items) {
    const where = whereOf(item);
    if (item.kind === "file") {
      writeFileSync(join(dir, item.path!), item.text);
      continue;
    }
    if (item.kind === "script") {
      await t.test(`${where}: TypeScript example`, (st) => {
        if (item.notRun) return st.skip(item.notRun);
        const file = join(dir, ".readme", `${exampleName(item)}.mjs`);
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, transpile(item.text));
        const r = spawnSync(process.execPath, [file], {
          cwd: dir,
          env,
          encoding: "utf8",
          timeout: 180_000,
          maxBuffer: 64 << 20,
        });
        assert.equal(
          r.status,
          0,
          `${where}: the example exited ${r.status ?? r.signal}\n${r.stderr}\n${r.stdout}`,
        );
        const bare = (l: string) => l.replace(/\s+/g, "");
        const printed = r.stdout.split("\n").filter((l) => l.trim() !== "");
        if (item.prints!.length > 0)
          assert.deepEqual(
            printed.map(bare),
            item.prints!.map(bare),
            `${where}: what it printed\n${r.stdout}`,
          );
      });
      continue;
    }
    const cmd = item.text.trim();
    await t.test(`${where}: ${cmd}`, (st) => {
      if (/^npm /.test(cmd)) return checkHarnessCommand(cmd, where);
      const elsewhere = NEEDS_ELSEWHERE.find((n) => n.pattern.test(cmd));
      if (elsewhere) return st.skip(elsewhere.why);
      const r = spawnSync("bash", ["-e", "-o", "pipefail", "-c", cmd], {
        cwd: dir,
        env,
        input: stdinFor(cmd),
        encoding: "utf8",
        timeout: 180_000,
        maxBuffer: 64 << 20,
      });
      assert.equal(
        r.status,
        0,
        `${where}: '${cmd}' exited ${r.status ?? r.signal}\n${r.stderr}\n${r.stdout}`,
      );
      if (item.expect !== undefined) assert.equal(r.stdout.trim(), item.expect, `${where}: its output`);
    });
  }
});

test("README.md and docs/: their TypeScript examples type-check against the public entry points", (t) => {
  const items = pageItems();
  assert.ok(items.filter((i) => i.kind === "script").length >= 4, "the pages' examples were found");
  const dir = mkdtempSync(join(tmpdir(), "herd-readme-ts-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.deepEqual(exampleTypeErrors(items, dir), []);
});

test("readmeItems: commands, continuations, expected output and file blocks", () => {
  const md = [
    "```sh",
    "herd a   # → 1 2",
    "# a comment line",
    "herd b \\",
    "  --flag x",
    "```",
    "<!-- file: p.yaml -->",
    "```yaml",
    "name: x",
    "```",
    "```ts",
    "console.log(1); // → 1",
    "```",
    "<!-- not run: needs a GPU -->",
    "```ts",
    "x",
    "```",
  ].join("\n");
  assert.deepEqual(readmeItems(md), [
    { line: 2, kind: "command", text: "herd a   # → 1 2", expect: "1 2" },
    { line: 4, kind: "command", text: "herd b  --flag x", expect: undefined },
    { line: 9, kind: "file", path: "p.yaml", text: "name: x\n" },
    { line: 12, kind: "script", text: "console.log(1); // → 1\n", prints: ["1"] },
    { line: 16, kind: "script", text: "x\n", prints: [], notRun: "needs a GPU" },
  ]);
});
