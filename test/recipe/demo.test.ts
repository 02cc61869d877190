// The `npm start` preparation: the shipped corpus becomes a trained BPE vocabulary of the small preset's
// size, main and annealing token shards, and a valid three-stage config over them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TokenShardReader } from "../../src/data/shards.js";
import { prepareDemo } from "../../src/recipe/demo.js";
import { modelConfig } from "../../src/train/trainer.js";
import { tempDir } from "../train/fixture.js";

test("demo: vocabulary, shards and config from assets/pretrain-corpus", () => {
  const { config, tokenizer } = prepareDemo(tempDir());
  assert.equal(tokenizer.vocabSize, 4096);
  const text = "Alice was beginning to get very tired of sitting by her sister on the bank.";
  assert.equal(tokenizer.decode(tokenizer.encode(text)), text);
  assert.ok(tokenizer.encode(text).length < text.length / 2.5, "the vocabulary compresses English");
  assert.deepEqual(
    config.stages.map((s) => s.kind),
    ["initial", "long-context", "annealing"],
  );
  const mc = modelConfig(config);
  assert.equal(mc.vocabSize, 4096);
  for (const path of [config.data.shards[0]!, config.stages[2]!.shards[0]!]) {
    const r = new TokenShardReader(path);
    assert.ok(r.numTokens > 50000 && r.numDocs > 100, `${path}: ${r.numTokens} tokens`);
    assert.equal(r.document(0)[0], tokenizer.bosId);
    r.close();
  }
});
