// The model commands end to end, as a user runs them: `herd model info`, `herd generate` (text and ids),
// and bad checkpoints refused (chat is in test/generate/chat.test.ts).
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { PieceVocab } from "../../src/generate/index.js";
import { repoPath } from "../helpers.js";

const cli = repoPath("dist", "src", "cli", "main.js");
const herd = (...args: string[]) => execFileSync(process.execPath, [cli, ...args], { encoding: "utf8" });
const tmp = mkdtempSync(join(tmpdir(), "herd-cli-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("herd generate --prompt on stories260K: its piece vocabulary encodes text, and the story continues", () => {
  const stories = repoPath("test", "fixtures", "stories260K");
  const exp = JSON.parse(readFileSync(join(stories, "expected.json"), "utf8"));
  const vocab = PieceVocab.fromFile(join(stories, "vocab.json"));
  const story: number[] = exp.greedy_new_tokens;
  // The first 24 tokens of the model's own greedy story, as text; encoding gives them back.
  const prefix = vocab.decode([1, ...story.slice(0, 24)]);
  assert.deepEqual(vocab.encode!(prefix), story.slice(0, 24));
  const out = herd(
    "generate",
    "--model",
    stories,
    "--prompt",
    prefix,
    "--temperature",
    "0",
    "--max-tokens",
    "16",
    "--print-ids",
  );
  assert.equal(out.trim().split("\n").at(-1), story.slice(24, 40).join(","));
});

test("herd model info prints a preset's exact parameter count and a checkpoint's shape", () => {
  const out = herd("model", "info", "llama3.1-8b");
  assert.match(out, /parameters\s+8,030,261,248 \(non-embedding 6,979,588,096\)/);
  assert.match(out, /KV cache\/token\s+128 KiB bf16/);
  const json = JSON.parse(
    herd("model", "info", repoPath("test", "fixtures", "reference", "tiny-tied"), "--json"),
  );
  const exp = JSON.parse(
    readFileSync(repoPath("test", "fixtures", "reference", "tiny-tied", "expected.json"), "utf8"),
  );
  assert.equal(json.parameters, exp.param_count);
  const bad = spawnSync(process.execPath, [cli, "model", "info", "nope"], { encoding: "utf8" });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /'nope' is neither a preset/);
});

test("herd generate prints stories260K's story, and reference ids with --prompt-ids --print-ids", () => {
  const stories = repoPath("test", "fixtures", "stories260K");
  const exp = JSON.parse(readFileSync(join(stories, "expected.json"), "utf8"));
  const out = herd(
    "generate",
    "--model",
    stories,
    "--prompt-ids",
    "1",
    "--temperature",
    "0",
    "--max-tokens",
    "100",
    "--print-ids",
  );
  const [text, ids] = [out.slice(0, out.lastIndexOf("\n", out.length - 2)), out.trim().split("\n").at(-1)!];
  assert.equal(text.trimEnd(), exp.greedy_text.trimEnd());
  assert.equal(ids, exp.greedy_new_tokens.join(","));

  const dir = repoPath("test", "fixtures", "reference", "tiny-scaled");
  const ref = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8"));
  const got = herd(
    "generate",
    "--model",
    dir,
    "--prompt-ids",
    ref.greedy_prompt.join(","),
    "--temperature",
    "0",
    "--ignore-eos",
    "--max-tokens",
    String(ref.greedy_new_tokens.length),
  );
  assert.equal(got.trim(), ref.greedy_new_tokens.join(","));
  const bad = spawnSync(process.execPath, [cli, "generate", "--model", dir, "--prompt", "hi"], {
    encoding: "utf8",
  });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /no tokenizer that can encode text for this model; use --prompt-ids/);
});

test("herd generate refuses a config.json with a billion layers at once, naming the file and field", () => {
  const dir = join(tmp, "billion-layers");
  cpSync(repoPath("test", "fixtures", "stories260K"), dir, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, num_hidden_layers: 1e9 }));
  // A small heap and a timeout: before the limit this filled the heap with a billion layers' names.
  const r = spawnSync(
    process.execPath,
    ["--max-old-space-size=128", cli, "generate", "--model", dir, "--prompt-ids", "1", "--max-tokens", "1"],
    { encoding: "utf8", timeout: 60_000 },
  );
  assert.equal(r.status, 1, r.stderr);
  assert.match(
    r.stderr,
    /billion-layers\/config\.json: field 'num_hidden_layers' must be at most 512, got 1000000000/,
  );
});

test("a FIFO in place of a checkpoint, config or tokenizer file is refused at once, naming the path", (t) => {
  const stories = repoPath("test", "fixtures", "stories260K");
  const cases: [string, string, string][] = [
    ["fifo-weights", "model.safetensors", stories],
    ["fifo-config", "config.json", stories],
    ["fifo-params", "params.json", repoPath("test", "fixtures", "reference", "tiny-tied", "meta")],
    ["fifo-pth", "consolidated.00.pth", repoPath("test", "fixtures", "reference", "tiny-tied", "meta")],
    ["fifo-tokenizer", "vocab.json", stories],
  ];
  for (const [name, file, src] of cases) {
    const dir = join(tmp, name);
    cpSync(src, dir, { recursive: true });
    rmSync(join(dir, file));
    if (spawnSync("mkfifo", [join(dir, file)]).status !== 0) {
      t.skip("no mkfifo on this platform");
      return;
    }
    // A timeout: opening a FIFO for reading waits for a writer that never comes.
    const r = spawnSync(
      process.execPath,
      [cli, "generate", "--model", dir, "--prompt-ids", "1", "--max-tokens", "1"],
      {
        encoding: "utf8",
        timeout: 30_000,
      },
    );
    assert.equal(r.status, 1, `${name}: ${r.signal ?? ""} ${r.stderr}`);
    assert.match(
      r.stderr,
      new RegExp(`${name}/${file.replace(".", "\\.")}: a FIFO \\(named pipe\\), not a regular file`),
    );
  }
  // herd quantize reads the weights and the tokenizer files it copies.
  const dir = join(tmp, "fifo-vocab");
  cpSync(stories, dir, { recursive: true });
  rmSync(join(dir, "vocab.json"));
  spawnSync("mkfifo", [join(dir, "vocab.json")]);
  const q = spawnSync(
    process.execPath,
    [cli, "quantize", "-m", dir, "--out", join(tmp, "fifo-q"), "--format", "q8_0"],
    {
      encoding: "utf8",
      timeout: 30_000,
    },
  );
  assert.equal(q.status, 1, `${q.signal ?? ""} ${q.stderr}`);
  assert.match(q.stderr, /fifo-vocab\/vocab\.json: a FIFO \(named pipe\), not a regular file/);
});
