// trainer_state.json of a checkpoint is checked field by field; errors name the file and the field.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { readTrainerState } from "../../src/train/checkpoint.js";
import { tempDir } from "./fixture.js";

test("trainer_state.json: errors name the file and the field", () => {
  const dir = tempDir();
  const file = join(dir, "trainer_state.json");
  const good = { step: 3, tokens: 10, loader: { epoch: 0, cursor: 2 }, rng: 5 };
  writeFileSync(file, JSON.stringify(good));
  assert.deepEqual(readTrainerState(file), good);
  writeFileSync(file, "{ not json");
  assert.throws(() => readTrainerState(file), new RegExp(`${file}: not valid JSON`));
  writeFileSync(file, JSON.stringify({ ...good, loader: { epoch: 0, cursor: 1.5 } }));
  assert.throws(() => readTrainerState(file), /field 'loader\.cursor' must be an integer ≥ 0 \(got 1\.5\)/);
  writeFileSync(file, JSON.stringify({ ...good, tokens: "x" }));
  assert.throws(() => readTrainerState(file), /field 'tokens'/);
});
