// The humaneval task in the harness: its items are the problems' prompts (base: the prompt itself;
// chat: a user turn and an assistant turn begun with the prompt in a python fence), n completions per
// item, and its scorer runs them in src/eval/code/'s sandbox: canonical solutions score pass@1 = 1,
// broken code 0 (skipped, saying why, where no sandbox can run).
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { readHumanEval } from "../../src/eval/code/humaneval.js";
import { sandboxCheck } from "../../src/eval/code/sandbox.js";
import { renderText } from "../../src/eval/prompt.js";
import { resolveTasks } from "../../src/eval/registry.js";
import type { TaskSpec } from "../../src/eval/task.js";
import { repoPath } from "../helpers.js";

const sample = repoPath("test", "fixtures", "humaneval", "sample.jsonl");
const dataDir = mkdtempSync(join(tmpdir(), "herd-heval-"));
copyFileSync(sample, join(dataDir, "HumanEval.jsonl"));
after(() => rmSync(dataDir, { recursive: true, force: true }));
const problems = readHumanEval(sample);
const task = resolveTasks(["humaneval"])[0] as TaskSpec;
const skip = (await sandboxCheck()) ?? false;

test("items are the problems' prompts, n completions each, stopping where the harness stops", () => {
  const [base] = task.build({ dataDir, chat: false, limit: 2 });
  assert.equal(base!.items.length, 2);
  assert.deepEqual(base!.metrics, { "pass@1,create_test": true });
  const r = base!.items[0]!.request;
  assert.equal(renderText(r.turns), problems[0]!.prompt);
  assert.ok(r.type === "generate_until" && r.until.includes("\ndef") && r.maxNewTokens === 1024);
  assert.ok(r.type === "generate_until" && (r.n ?? 1) === 1 && r.temperature === 0);
  const [many] = task.build({ dataDir, chat: true, limit: 1, samples: 10 });
  assert.deepEqual(Object.keys(many!.metrics), ["pass@1,create_test", "pass@10,create_test"]);
  const m = many!.items[0]!.request;
  assert.ok(m.type === "generate_until" && m.n === 10 && m.temperature === 0.2);
  assert.equal(m.turns.at(-1)!.role, "assistant");
  assert.ok(m.turns.at(-1)!.content.startsWith("Here is the completed function:\n```python\n"));
});

test("the scorer runs completions in the sandbox: canonical solutions pass, broken code fails", {
  skip,
}, async () => {
  const [t] = task.build({ dataDir, chat: false, limit: 2, samples: 2 });
  for (const [i, item] of t!.items.entries()) {
    const good = await item.score({
      type: "generate_until",
      outputs: [problems[i]!.canonicalSolution, "    return None\n"],
    });
    assert.equal(good.metrics["pass@1,create_test"], 0.5); // one of two samples passes
    const none = await item.score({
      type: "generate_until",
      outputs: ["    while True: pass\n", "    syntax error(\n"],
    });
    assert.equal(none.metrics["pass@1,create_test"], 0);
  }
});
