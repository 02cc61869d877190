// The `herd_tasks` eval task (src/eval/tasks/herdTasks.ts): it reads the held-out split `herd tasks`
// writes, one subtask per kind with every held-out task, and its score is the generator's checker — the
// generator's correct response scores 1 and its wrong one 0, for every task; the chat prompt is the
// task's dialog in the Llama 3.1 format; a missing data file names itself; and the harness runs it end
// to end on a tiny model, writing the acc row of the group.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { evaluate } from "../../src/eval/harness.js";
import { promptIds } from "../../src/eval/prompt.js";
import { resolveTasks } from "../../src/eval/registry.js";
import type { TaskSpec } from "../../src/eval/task.js";
import { tiktokenCodec } from "../../src/generate/index.js";
import { writeTaskFiles } from "../../src/posttrain/tasks/index.js";
import { byteChat, byteTokenizer, tempDir, tinyModel } from "../posttrain/fixture.js";

const dataDir = tempDir();
const splits = writeTaskFiles(join(dataDir, "herd_tasks"), { seed: 3, train: 6, heldout: 9 });
const spec = resolveTasks(["herd_tasks"])[0] as TaskSpec;

test("one subtask per kind holding every held-out task; the checker scores it", async () => {
  const subtasks = spec.build({ dataDir, chat: true });
  assert.deepEqual(
    subtasks.map((s) => [s.name, s.items.length]),
    [
      ["herd_tasks_arithmetic", 3],
      ["herd_tasks_instructions", 3],
      ["herd_tasks_facts", 3],
    ],
  );
  const items = subtasks.flatMap((s) => s.items);
  const byPrompt = new Map(splits.heldout.map((it) => [it.task.messages[0]!.content, it]));
  for (const item of items) {
    assert.equal(item.request.type, "generate_until");
    const it = byPrompt.get(item.request.turns[0]!.content)!;
    assert.ok(it, "each item is a held-out task");
    const score = async (text: string) =>
      (await item.score({ type: "generate_until", outputs: [text] })).metrics["acc,none"];
    assert.equal(await score(it.correct), 1, it.correct);
    assert.equal(await score(it.wrong), 0, it.wrong);
  }
  const chat = byteChat();
  const first = items[0]!.request.turns;
  assert.deepEqual(
    promptIds(first, tiktokenCodec(byteTokenizer()), null, true),
    chat.encodeDialogPrompt([{ role: "user", content: first[0]!.content }]),
  );
  assert.equal(spec.build({ dataDir, chat: true, limit: 1 }).flatMap((s) => s.items).length, 3);
});

test("a missing held-out file is named", () => {
  assert.throws(
    () => spec.build({ dataDir: join(dataDir, "nowhere"), chat: true }),
    /nowhere\/herd_tasks\/heldout\/prompts\.jsonl: missing/,
  );
});

test("the harness runs it on a model: a group row with acc over the subtasks", async () => {
  const model = tinyModel();
  try {
    const codec = tiktokenCodec(byteTokenizer());
    const { results } = await evaluate(model, [spec], { dataDir, chat: true, codec, limit: 1 });
    assert.deepEqual(results.group_subtasks.herd_tasks, [
      "herd_tasks_arithmetic",
      "herd_tasks_instructions",
      "herd_tasks_facts",
    ]);
    const acc = results.results.herd_tasks!["acc,none"] as number;
    assert.ok(acc >= 0 && acc <= 1);
  } finally {
    model.dispose();
  }
});
