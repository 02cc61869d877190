// `herd tokenize` and `herd tokenizer train`, run as a user would (a child process).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { repoPath } from "../helpers.js";
import { sample } from "./corpus.js";

const MAIN = repoPath("dist", "src", "cli", "main.js");
function herd(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { input, encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("herd tokenize", () => {
  test("encode, decode and count, from stdin, --text or a file", () => {
    assert.deepEqual(herd(["tokenize", "encode"], "Hello, world!"), {
      code: 0,
      out: "9906 11 1917 0\n",
      err: "",
    });
    assert.equal(herd(["tokenize", "encode", "--json", "--bos", "--text", "Hello"]).out, "[128000,9906]\n");
    assert.equal(herd(["tokenize", "decode"], "[9906, 11, 1917, 0]").out, "Hello, world!");
    assert.equal(herd(["tokenize", "count", "--allow-special", "--text", "<|eot_id|>"]).out, "1\n");
    const dir = mkdtempSync(join(tmpdir(), "herd-cli-"));
    writeFileSync(join(dir, "in.txt"), "don't");
    assert.equal(herd(["tokenize", "encode", join(dir, "in.txt")]).out, "15357 956\n");
  });

  test("bad input is reported, not thrown", () => {
    const dir = mkdtempSync(join(tmpdir(), "herd-cli-"));
    const bad = join(dir, "bad.model");
    writeFileSync(bad, "IQ== 0\nIg==\n");
    const r = herd(["tokenize", "count", "--tokenizer", bad, "--text", "x"]);
    assert.equal(r.code, 1);
    assert.equal(r.err, `herd tokenize: ${bad}:2: expected "<base64 token> <rank>", found 1 field(s)\n`);
    assert.equal(
      herd(["tokenize", "decode", "--text", "12 x"]).err,
      'herd tokenize: decode: item 2 ("x") is not a token id\n',
    );
    assert.equal(herd(["tokenize", "frobnicate"]).code, 2);
  });

  test("--sha256 is checked for the shipped tokenizer too", () => {
    const r = herd(["tokenize", "count", "--sha256", "00".repeat(32), "--text", "x"]);
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      /^herd tokenize: .*assets\/llama3\/tokenizer\.model: sha256 is 82e9d319[0-9a-f]{56}, expected 0{64} /,
    );
    assert.equal(r.out, "");
    const pinned = "82E9D31979E92AB929CD544440F129D9ECD797B69E327F80F17E1C50D5551B55";
    assert.deepEqual(herd(["tokenize", "count", "--sha256", pinned, "--text", "x"]), {
      code: 0,
      out: "1\n",
      err: "",
    });
  });

  test("a ranks file with a huge rank is refused at once, naming the file and line", () => {
    const dir = mkdtempSync(join(tmpdir(), "herd-cli-"));
    const bad = join(dir, "tokenizer.model");
    const lines = Array.from({ length: 256 }, (_, b) => `${Buffer.of(b).toString("base64")} ${b}`);
    writeFileSync(bad, `${lines.join("\n")}\naGk= 2147483646\n`);
    const r = herd(["tokenize", "count", "--tokenizer", bad, "--text", "x"]);
    assert.equal(r.code, 1);
    assert.equal(
      r.err,
      `herd tokenize: ${bad}:257: expected rank 256, found 2147483646; ranks must run 0, 1, 2, … in order\n`,
    );
  });
});

describe("herd tokenizer train", () => {
  test("trains, writes the files, and the result tokenizes", () => {
    const dir = mkdtempSync(join(tmpdir(), "herd-cli-"));
    writeFileSync(join(dir, "c.txt"), sample("english"));
    const out = join(dir, "tok.model");
    const r = herd(["tokenizer", "train", "--vocab-size", "512", "--out", out, join(dir, "c.txt")]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /merging: 256\/256 merges \(100%\)/);
    assert.match(r.err, /wrote .*tok\.model \(512 ranks \+ 256 special tokens\)/);
    assert.ok(existsSync(`${out}.json`));
    const ids = herd(["tokenize", "encode", "--tokenizer", out, "--text", "Alice"]).out.trim().split(" ");
    assert.ok(ids.length >= 1 && ids.every((id) => Number(id) < 512));
    assert.equal(herd(["tokenizer", "train", "--out", out, join(dir, "c.txt")]).code, 2);
  });
});
