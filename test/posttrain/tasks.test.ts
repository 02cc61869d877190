// The verifiable-task generator (src/posttrain/tasks/): the same seed gives the same files, the checker
// accepts every generated correct answer and rejects every generated wrong one, the splits never share
// a prompt (and the held-out split does not move with the training size), the checker's rules on
// hand-written responses (GSM8K's `####` line, IFEval's constraints, the fact's first word), the facts
// come from the corpus as stated, and `herd tasks` writes the files atomically with valid JSONL.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { gunzipSync } from "node:zlib";
import {
  check,
  countBullets,
  countWords,
  factPool,
  finalAnswer,
  generateTasks,
  isJson,
  readTasks,
  type Task,
} from "../../src/posttrain/tasks/index.js";
import { repoPath } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "herd-tasks-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const cli = repoPath("dist", "src", "cli", "main.js");

const splits = generateTasks({ seed: 7, train: 150, heldout: 60 });
const prompt = (t: Task) => t.messages.map((m) => m.content).join("\n");

test("tasks: the same seed gives the same items; another seed other ones", () => {
  assert.deepEqual(generateTasks({ seed: 7, train: 150, heldout: 60 }), splits);
  const other = generateTasks({ seed: 8, train: 150, heldout: 60 });
  assert.notDeepEqual(
    other.train.map((i) => i.task.id),
    splits.train.map((i) => i.task.id),
  );
});

test("tasks: kinds take turns; the checker accepts each correct answer and rejects each wrong one", () => {
  const items = [...splits.train, ...splits.heldout];
  assert.equal(splits.train.length, 150);
  assert.equal(splits.heldout.length, 60);
  assert.deepEqual(
    splits.train.slice(0, 6).map((i) => i.task.kind),
    ["arithmetic", "instructions", "facts", "arithmetic", "instructions", "facts"],
  );
  for (const it of items) {
    const ok = check(it.task, it.correct);
    assert.ok(ok.correct, `${it.task.id}: correct answer rejected (${ok.detail})`);
    const bad = check(it.task, it.wrong);
    assert.ok(!bad.correct, `${it.task.id}: wrong answer accepted (${bad.detail})`);
    assert.notEqual(it.correct, it.wrong);
  }
  // Every IFEval constraint kind occurs.
  const ids = new Set(
    items.flatMap((i) =>
      i.task.check.kind === "instructions" ? i.task.check.constraints.map((c) => c.id) : [],
    ),
  );
  assert.equal(ids.size, 6, [...ids].join(", "));
});

test("tasks: train and held-out never share a prompt; held-out does not move with the training size", () => {
  const held = new Set(splits.heldout.map((i) => prompt(i.task)));
  assert.equal(held.size, splits.heldout.length);
  const train = new Set(splits.train.map((i) => prompt(i.task)));
  assert.equal(train.size, splits.train.length);
  for (const p of train) assert.ok(!held.has(p), `shared: ${p}`);
  const bigger = generateTasks({ seed: 7, train: 300, heldout: 60 });
  assert.deepEqual(bigger.heldout, splits.heldout);
  const facts = factPool().length;
  assert.throws(
    () => generateTasks({ seed: 7, train: 3 * facts, heldout: 3, kinds: ["facts"] }),
    /the corpus yields \d+ fact questions/,
  );
  assert.throws(
    () => generateTasks({ seed: 1, train: 1, heldout: 1, kinds: ["poetry" as "facts"] }),
    /unknown kind/,
  );
});

test("checker: GSM8K's answer line, IFEval's constraints, the fact's first word", () => {
  assert.equal(finalAnswer("3 + 4 = 7\n#### 7"), 7);
  assert.equal(finalAnswer("#### 1,234\n"), 1234);
  assert.equal(finalAnswer("#### 3\nno, #### -5"), -5);
  assert.equal(finalAnswer("the answer is 7"), null);
  const arith = { check: { kind: "arithmetic" as const, answer: 7 } };
  assert.equal(check(arith, "so #### 7").correct, true);
  assert.equal(check(arith, "7").correct, false);
  assert.equal(countWords("It's a cat, isn't it?"), 7); // \w+ runs: It s a cat isn t it
  assert.equal(countBullets("* one\n* two\n- three\n** bold"), 3);
  assert.equal(isJson('```json\n{"a": 1}\n```'), true);
  assert.equal(isJson('{"a": 1'), false);
  const ins = (constraints: Task["check"] & { kind: "instructions" }) => ({ check: constraints });
  const lower = ins({ kind: "instructions", constraints: [{ id: "change_case:english_lowercase" }] });
  assert.equal(check(lower, "all small here.").correct, true);
  assert.equal(check(lower, "Not here.").correct, false);
  assert.equal(check(lower, "123").correct, false);
  const kw = ins({ kind: "instructions", constraints: [{ id: "keywords:existence", keywords: ["sea"] }] });
  assert.equal(check(kw, "The Sea, at last.").correct, true);
  assert.equal(check(kw, "A season.").correct, false); // whole words, not IFEval's substrings
  const words = ins({
    kind: "instructions",
    constraints: [{ id: "length_constraints:number_words", relation: "less than", words: 3 }],
  });
  assert.equal(check(words, "two words").correct, true);
  assert.equal(check(words, "three words here").correct, false);
  const fact = { check: { kind: "facts" as const, answer: "Turtle" } };
  assert.equal(check(fact, ' "turtle".').correct, true);
  assert.equal(check(fact, "Turtles").correct, false);
  assert.equal(check(fact, "The Turtle").correct, false);
});

test("checker: GSM8K's own reference answers (the first 20 of its test set) are read and accepted", () => {
  const lines = readFileSync(repoPath("test", "fixtures", "gsm8k", "test-first20.jsonl"), "utf8")
    .trim()
    .split("\n");
  assert.equal(lines.length, 20);
  for (const line of lines) {
    const { answer } = JSON.parse(line) as { answer: string };
    const last = answer.trim().split("\n").at(-1)!;
    assert.match(last, /^#### /);
    const n = Number(last.slice(5).replace(/,/g, ""));
    const task = { check: { kind: "arithmetic" as const, answer: n } };
    assert.equal(check(task, answer).correct, true, answer);
    assert.equal(check({ check: { kind: "arithmetic", answer: n + 1 } }, answer).correct, false);
  }
  // Our generated answers end the same way: reasoning lines, then "#### N" alone on the last line.
  for (const it of splits.train.filter((i) => i.task.kind === "arithmetic"))
    assert.match(it.correct, /\n#### \d+$/);
});

test("facts: each question's phrase occurs in the named book, always followed by the answer", () => {
  const pool = factPool();
  assert.ok(pool.length >= 300, `${pool.length} questions`);
  const manifest = JSON.parse(readFileSync(repoPath("assets", "pretrain-corpus", "manifest.json"), "utf8"));
  const raven = manifest.find((m: { title: string }) => m.title.includes("The Raven"));
  const text = gunzipSync(readFileSync(repoPath("assets", "pretrain-corpus", raven.file))).toString("utf8");
  const words = text.match(/[A-Za-z]+(?:'[a-z]+)?/g)!.join(" ");
  const ravenFacts = pool.filter((f) => f.title === "The Raven");
  assert.ok(ravenFacts.length > 0);
  for (const f of ravenFacts.slice(0, 20)) {
    const after = [...words.matchAll(new RegExp(`\\b${f.context} (\\S+)`, "g"))].map((m) => m[1]);
    assert.ok(after.length >= 3, `${f.context}: ${after.length} times`);
    for (const a of after) assert.equal(a, f.answer, f.context);
  }
});

test("readTasks: a bad line is named with its field", () => {
  const file = join(tmp, "bad.jsonl");
  const user = [{ role: "user", content: "q" }];
  const cases: [unknown, RegExp][] = [
    [
      { messages: user, check: { kind: "arithmetic", answer: "7" } },
      /bad\.jsonl:2: field 'check\.answer' must be a number/,
    ],
    [{ messages: user, check: { kind: "poetry" } }, /:2: field 'check\.kind' must be one of/],
    [
      {
        messages: user,
        check: { kind: "instructions", constraints: [{ id: "keywords:existence", keywords: [] }] },
      },
      /:2: field 'check\.constraints\[0\]\.keywords' must be a non-empty list of words/,
    ],
    [{ messages: [] }, /:2: field 'messages' must be a non-empty list/],
    [
      { messages: [...user, { role: "assistant", content: "a" }] },
      /:2: field 'messages\[1\]' is an assistant message/,
    ],
  ];
  for (const [row, err] of cases) {
    writeFileSync(file, `${JSON.stringify({ messages: user })}\n${JSON.stringify(row)}\n`);
    assert.throws(() => readTasks(file), err);
  }
  writeFileSync(file, `${JSON.stringify({ messages: user })}\n{oops\n`);
  assert.throws(() => readTasks(file), /bad\.jsonl:2: not JSON/);
  const good = splits.heldout.slice(0, 6).map((i) => i.task);
  writeFileSync(file, good.map((t) => `${JSON.stringify(t)}\n`).join(""));
  assert.deepEqual(readTasks(file), good);
});

test("herd tasks: writes sft, prompts and preferences for both splits, JSONL the readers accept", () => {
  const out = join(tmp, "tasks");
  const r = spawnSync(
    process.execPath,
    [
      cli,
      "tasks",
      "--out",
      out,
      "--seed",
      "3",
      "--train",
      "12",
      "--heldout",
      "6",
      "--kinds",
      "arithmetic,facts",
    ],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  for (const split of ["train", "heldout"]) {
    assert.deepEqual(readdirSync(join(out, split)).sort(), [
      "preferences.jsonl",
      "prompts.jsonl",
      "sft.jsonl",
    ]);
    const n = split === "train" ? 12 : 6;
    const sft = readFileSync(join(out, split, "sft.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(sft.length, n);
    assert.deepEqual(
      sft[0].messages.map((m: { role: string }) => m.role),
      ["user", "assistant"],
    );
    const prefs = readFileSync(join(out, split, "preferences.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(Object.keys(prefs[0]), ["prompt", "chosen", "rejected"]);
    const tasks = readTasks(join(out, split, "prompts.jsonl"));
    assert.equal(tasks.length, n);
    for (const [i, t] of tasks.entries()) {
      assert.equal(check(t as Task, sft[i].messages[1].content).correct, true);
      assert.equal(check(t as Task, prefs[i].rejected[0].content).correct, false);
    }
  }
  const again = generateTasks({ seed: 3, train: 12, heldout: 6, kinds: ["arithmetic", "facts"] });
  assert.deepEqual(
    readTasks(join(out, "train", "prompts.jsonl")),
    again.train.map((i) => i.task),
  );
  const bad = spawnSync(process.execPath, [cli, "tasks", "--out", out, "--kinds", "poetry"], {
    encoding: "utf8",
  });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /poetry/);
});

test("arithmetic difficulty: the options bound steps and numbers, and leaving them out is the defaults (2–3 steps, 20, 10, 5)", () => {
  const easy = generateTasks({
    seed: 5,
    train: 40,
    heldout: 10,
    kinds: ["arithmetic"],
    arithmetic: { minSteps: 1, maxSteps: 1, maxStart: 9, maxAdd: 5, maxPack: 3 },
  });
  for (const it of [...easy.train, ...easy.heldout]) {
    const lines = it.correct.split("\n");
    assert.equal(lines.length, 3, it.correct); // start, one step, the #### line
    const nums = it.task.messages[0]!.content.match(/\d+/g)!.map(Number);
    assert.ok(nums[0]! >= 2 && nums[0]! <= 9, it.task.messages[0]!.content);
    assert.ok(
      nums.slice(1).every((n) => n <= 5),
      it.task.messages[0]!.content,
    );
    assert.equal(check(it.task, it.correct).correct, true);
    assert.equal(check(it.task, it.wrong).correct, false);
  }
  const explicit = { minSteps: 2, maxSteps: 3, maxStart: 20, maxAdd: 10, maxPack: 5 };
  const a = generateTasks({ seed: 5, train: 20, heldout: 5, kinds: ["arithmetic"] });
  const b = generateTasks({ seed: 5, train: 20, heldout: 5, kinds: ["arithmetic"], arithmetic: explicit });
  assert.deepEqual(a, b);
});
