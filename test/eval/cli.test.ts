// `herd eval` end to end on the stories260K fixture model and the bundled data samples: a results JSON
// in the harness's shape (metric and stderr keys per task, configs, n-samples, model and dtype, version),
// per-sample JSONL, the summary table; `herd eval compare` as a Markdown table and an SVG chart; the
// perplexity task equals `herd perplexity`; niah writes its heat map.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { repoPath } from "../helpers.js";

const cli = repoPath("dist", "src", "cli", "main.js");
const herd = (...args: string[]) =>
  execFileSync(process.execPath, [cli, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const model = repoPath("test", "fixtures", "stories260K");
const data = repoPath("test", "fixtures", "eval");
const tmp = mkdtempSync(join(tmpdir(), "herd-evalcli-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("herd eval --tasks mmlu,arc_challenge,gsm8k --limit 3 writes the harness's results JSON", () => {
  const out = join(tmp, "run");
  const stdout = herd(
    "eval",
    "--model",
    model,
    "--tasks",
    "mmlu,arc_challenge,gsm8k",
    "--limit",
    "3",
    "--data-dir",
    data,
    "--output",
    out,
    "--log-samples",
  );
  assert.match(stdout, /\|Tasks\|Filter\|n-shot\|Metric\|Value\| \|Stderr\|/);
  assert.match(stdout, /\|gsm8k\|strict-match\|5\|exact_match\|/);
  const r = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
  for (const t of ["mmlu_anatomy", "mmlu_abstract_algebra", "mmlu", "arc_challenge"]) {
    const acc = r.results[t]["acc,none"];
    assert.ok(acc >= 0 && acc <= 1, `${t}: ${acc}`);
    assert.equal(typeof r.results[t]["acc_stderr,none"], "number");
  }
  assert.equal(typeof r.results.arc_challenge["acc_norm,none"], "number");
  assert.equal(typeof r.results.gsm8k["exact_match,flexible-extract"], "number");
  assert.equal(typeof r.results.mmlu["acc_macro,none"], "number");
  // The group's acc is weighted by subtask size; its macro average is the mean of the subjects'.
  const subj = r.group_subtasks.mmlu.map((s: string) => r.results[s]["acc,none"]);
  assert.ok(
    Math.abs(r.results.mmlu["acc_macro,none"] - subj.reduce((a: number, b: number) => a + b) / subj.length) <
      1e-12,
  );
  assert.deepEqual(r["n-samples"].mmlu_anatomy, { original: 4, effective: 3 });
  assert.deepEqual(r["n-samples"].arc_challenge, { original: 10, effective: 3 });
  assert.equal(r["n-shot"].arc_challenge, 25);
  assert.deepEqual([r.versions.gsm8k, r.versions.mmlu_anatomy], [3, 1]);
  assert.equal(r.configs.gsm8k.num_fewshot, 5);
  assert.equal(r.config.dtype, "f32");
  assert.equal(r.config.model_path, model);
  assert.equal(r.herd_version, JSON.parse(readFileSync(repoPath("package.json"), "utf8")).version);
  assert.ok("git_hash" in r);
  const samples = readFileSync(join(out, "samples_gsm8k.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(samples.length, 3);
  for (const s of samples) {
    assert.ok(s.prompt.endsWith("Answer:"));
    assert.equal(typeof s.output[0], "string");
    assert.ok("strict-match" in s.extracted && "flexible-extract" in s.extracted);
    assert.ok(s.metrics["exact_match,strict-match"] === 0 || s.metrics["exact_match,strict-match"] === 1);
  }
  const mc = JSON.parse(readFileSync(join(out, "samples_mmlu_anatomy.jsonl"), "utf8").split("\n")[0]!);
  assert.equal(mc.output.length, 4);
  assert.equal(
    mc.metrics["acc,none"],
    mc.output.indexOf(Math.max(...mc.output)) === Number(mc.target) ? 1 : 0,
  );

  // compare: two runs side by side.
  const other = join(tmp, "other.json");
  r.results.arc_challenge["acc,none"] = 0.5;
  writeFileSync(other, JSON.stringify(r));
  const svg = join(tmp, "cmp.svg");
  const table = herd("eval", "compare", out, other, "--svg", svg);
  assert.match(table, /^\|task\|metric\|run\|other.json\|/);
  assert.match(table, /\|arc_challenge\|acc,none\|0\.\d{4}\|0\.5000\|/);
  const chart = readFileSync(svg, "utf8");
  assert.ok(chart.startsWith("<svg") && chart.includes('class="bar"'));
});

test("bad input fails with a clear message", () => {
  const r = spawnSync(
    process.execPath,
    [cli, "eval", "--model", model, "--tasks", "mmlu,bogus", "--data-dir", data],
    {
      encoding: "utf8",
    },
  );
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown task 'bogus'/);
  const h = herd("eval", "--help");
  assert.match(h, /--tasks A,B/);
  assert.match(h, /--log-samples/);
});

test("the perplexity task equals herd perplexity; niah writes a heat map", () => {
  const text = repoPath("test", "eval", "heldout-stories.txt");
  const out = join(tmp, "ppl");
  herd("eval", "--model", model, "--tasks", "perplexity,niah", "--text", text, "--output", out);
  const r = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
  const old = herd("perplexity", "--model", model, "--text", text);
  const ppl = Number(/perplexity ([0-9.]+)/.exec(old)![1]);
  assert.ok(Math.abs(r.results.perplexity["perplexity,none"] - ppl) < 1e-4);
  const bpb = r.results.perplexity["bits_per_byte,none"];
  assert.ok(bpb > 0 && bpb < 8);
  assert.ok(r.results.niah["acc,single"] >= 0 && r.results.niah["acc,single"] <= 1);
  const recall = r.results.niah["recall,multi"];
  assert.ok(recall >= 0 && recall <= 1);
  assert.ok(readFileSync(join(out, "niah.svg"), "utf8").includes('class="cell"'));
});
