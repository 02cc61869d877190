// HumanEval's reader, prompts, completion cutting and check program, and pass@k: the reader against the
// bundled sample of the official file (test/fixtures/humaneval/, MIT) plain and gzipped and against
// broken files (errors name file and line); pass@k against its closed form 1 − C(n−c,k)/C(n,k) computed
// exactly with BigInt. None of this runs code (sandbox.test.ts does).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { gzipSync } from "node:zlib";
import {
  HUMANEVAL_STOP,
  humanEvalCompletion,
  humanEvalProgram,
  humanEvalPrompt,
  readHumanEval,
} from "../../../src/eval/code/humaneval.js";
import { sandboxLimits } from "../../../src/eval/code/sandbox.js";
import { passAtK } from "../../../src/eval/code/score.js";
import { repoPath, sharedPath } from "../../helpers.js";

const SAMPLE = repoPath("test", "fixtures", "humaneval", "sample.jsonl");
const dir = mkdtempSync(join(tmpdir(), "herd-humaneval-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("readHumanEval reads the official format, plain and gzipped", () => {
  const ps = readHumanEval(SAMPLE);
  assert.equal(ps.length, 8);
  const raw = JSON.parse(readFileSync(SAMPLE, "utf8").split("\n")[1]!);
  assert.deepEqual(ps[1], {
    taskId: raw.task_id,
    prompt: raw.prompt,
    canonicalSolution: raw.canonical_solution,
    test: raw.test,
    entryPoint: raw.entry_point,
  });
  assert.equal(ps[1]!.taskId, "HumanEval/2");
  assert.equal(ps[1]!.entryPoint, "truncate_number");
  const gz = join(dir, "HumanEval.jsonl.gz");
  writeFileSync(gz, gzipSync(readFileSync(SAMPLE)));
  assert.deepEqual(readHumanEval(gz), ps);
});

test("readHumanEval: the whole official file where ../shared has it", {
  skip: sharedPath("data", "eval", "HumanEval.jsonl.gz") ? false : "../shared/data/eval is not here",
}, () => {
  const ps = readHumanEval(sharedPath("data", "eval", "HumanEval.jsonl.gz")!);
  assert.equal(ps.length, 164);
  assert.deepEqual(
    ps.map((p) => p.taskId),
    ps.map((_, i) => `HumanEval/${i}`),
  );
});

test("readHumanEval names the file, line and field of bad input", () => {
  const good = readFileSync(SAMPLE, "utf8").split("\n")[0]!;
  const cases: [string, RegExp][] = [
    [`${good}\n\n{"task_id": "x"`, /bad\.jsonl:3: not a JSON object/],
    [`${good}\n[1, 2]`, /bad\.jsonl:2: not a JSON object/],
    [`${good}\n${good.replace('"entry_point"', '"entry"')}`, /bad\.jsonl:2: field 'entry_point' is missing/],
    [good.replace(/"test": "(?:[^"\\]|\\.)*"/, '"test": 7'), /bad\.jsonl:1: field 'test' must be a string/],
    [
      good.replace(/"entry_point": "\w+"/, '"entry_point": "f(); import os"'),
      /bad\.jsonl:1: field 'entry_point'/,
    ],
    [`${good}\n${good}`, /bad\.jsonl:2: task_id 'HumanEval\/0' repeats line 1/],
    ["\n\n", /bad\.jsonl: no problems/],
  ];
  const path = join(dir, "bad.jsonl");
  for (const [text, re] of cases) {
    writeFileSync(path, text);
    assert.throws(() => readHumanEval(path), re);
  }
});

test("prompts: base models continue the prompt, instruct models get it in a chat turn", () => {
  const [p] = readHumanEval(SAMPLE);
  const base = humanEvalPrompt(p!);
  assert.equal(base.user, null);
  assert.equal(base.prefix, p!.prompt);
  assert.deepEqual(base.stop, ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]);
  assert.equal(base.maxTokens, 1024);
  const chat = humanEvalPrompt(p!, "instruct");
  assert.ok(chat.user?.includes(p!.prompt));
  assert.ok(chat.prefix.startsWith("Here is the completed function:\n```python\n"));
  assert.ok(chat.prefix.endsWith(`${p!.prompt}\n`));
  assert.ok(chat.stop.includes("\n```"));
});

test("completions are cut at the first stop sequence; indented code is kept", () => {
  const body = "    for x in xs:\n        if x:\n            return 1\n    # done\n    return 0\n";
  assert.equal(humanEvalCompletion(`${body}\n\nif __name__ == "__main__":\n    main()`), `${body}\n`);
  assert.equal(humanEvalCompletion(`${body}\ndef helper():\n    pass\n`), body);
  assert.equal(humanEvalCompletion(`${body}\nprint(f(1))\n#x`), body);
  assert.equal(humanEvalCompletion(body), body);
  for (const s of HUMANEVAL_STOP) assert.equal(humanEvalCompletion(`A${s}B${s}C`), "A");
  assert.equal(humanEvalCompletion(`${body}\`\`\`\nThis solution loops…`, "instruct"), body.trimEnd());
  assert.equal(humanEvalCompletion(`${body}\n\`\`\``, "instruct"), body);
});

test("the check program is prompt + completion + test + check(entry_point)", () => {
  const [p] = readHumanEval(SAMPLE);
  assert.equal(
    humanEvalProgram(p!, "    return True\n"),
    `${p!.prompt}    return True\n\n${p!.test}\ncheck(has_close_elements)\n`,
  );
});

function choose(n: number, k: number): bigint {
  if (k < 0 || k > n) return 0n;
  let r = 1n;
  for (let i = 0; i < k; i++) r = (r * BigInt(n - i)) / BigInt(i + 1);
  return r;
}

test("pass@k equals 1 − C(n−c,k)/C(n,k) on a table", () => {
  const rows: [number, number, number][] = [
    [1, 0, 1],
    [1, 1, 1],
    [10, 3, 1],
    [10, 3, 5],
    [10, 3, 7],
    [10, 3, 8],
    [10, 3, 10],
    [10, 0, 10],
    [20, 5, 10],
    [64, 1, 10],
    [200, 37, 1],
    [200, 37, 10],
    [200, 37, 100],
    [200, 199, 150],
  ];
  for (const [n, c, k] of rows) {
    const num = choose(n - c, k);
    const den = choose(n, k);
    // 1 − num/den to ~17 digits, exactly in BigInt then one division.
    const exact = Number(((den - num) * 10n ** 17n) / den) / 1e17;
    const got = passAtK(n, c, k);
    assert.ok(
      Math.abs(got - exact) <= 1e-12 * Math.max(1, exact),
      `n=${n} c=${c} k=${k}: ${got} vs ${exact}`,
    );
  }
  for (const [n, c] of [
    [10, 3],
    [7, 2],
    [64, 63],
  ] as const)
    assert.ok(Math.abs(passAtK(n, c, 1) - c / n) < 1e-15);
  assert.throws(() => passAtK(5, 6, 1), /0 ≤ c ≤ n/);
  assert.throws(() => passAtK(5, 2, 6), /1 ≤ k ≤ n/);
  assert.throws(() => passAtK(5, 2.5, 1), /integers/);
});

test("sandbox limits are validated, naming the field", () => {
  assert.equal(sandboxLimits().timeoutS, 5);
  assert.equal(sandboxLimits({ memoryMb: 256 }).memoryMb, 256);
  assert.throws(() => sandboxLimits({ timeoutS: 0 }), /field 'timeoutS' must be a positive number/);
  assert.throws(() => sandboxLimits({ processes: 1.5 }), /field 'processes' must be an integer/);
  assert.throws(() => sandboxLimits({ timeout: 3 } as never), /'timeout' is not a known field/);
});
