// The pre-training config's fields are declared once (PRETRAIN_SCHEMA): docs/pretrain.md's table of them is
// exactly the one the declaration makes (node scripts/readme-knobs.mjs after npm run build rewrites it).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { configTable, withGenerated } from "../../src/core/schema.js";
import { PRETRAIN_SCHEMA } from "../../src/train/config.js";
import { DEFAULT_LONG_CONTEXT } from "../../src/train/longContextConfig.js";
import { repoPath } from "../helpers.js";

test("docs/pretrain.md's config table is the one PRETRAIN_SCHEMA makes", () => {
  const readme = readFileSync(repoPath("docs", "pretrain.md"), "utf8");
  assert.equal(withGenerated(readme, "pretrain-config", configTable(PRETRAIN_SCHEMA)), readme);
  for (const f of ["`stages[].ramp[].afterTokens`", "`nonFinite.maxSkips`", "`longContext.depths`"])
    assert.ok(readme.includes(`| ${f} |`), f);
});

test("the long-context defaults come from the schema", () => {
  assert.deepEqual(DEFAULT_LONG_CONTEXT, {
    require: false,
    tolerance: 0.02,
    niahThreshold: 1,
    depths: [0, 0.25, 0.5, 0.75, 1],
    lengths: null,
    trials: 2,
    tokenizer: null,
  });
});
