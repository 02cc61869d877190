// Rewrites the documentation's generated tables from their declarations, as compiled to dist/ (run
// `npm run build` first): the knobs table in docs/knobs.md (between <!-- knobs:begin --> and
// <!-- knobs:end -->, from src/core/knobs.ts) and the pre-training config's fields in docs/pretrain.md
// (<!-- pretrain-config:begin/end -->, from PRETRAIN_SCHEMA in src/train/config.ts) and the pipeline
// file's fields in docs/data.md (<!-- pipeline-config:begin/end -->, from PIPELINE_SCHEMA in
// src/data/pipeline/config.ts), both rendered by src/core/schema.ts's configTable.
// test/core/knobs.test.ts, test/train/configSchema.test.ts and test/data/pipeline.test.ts fail while a
// page differs.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const load = (...p) => import(pathToFileURL(join(root, "dist", "src", ...p)).href);
const { withKnobTable } = await load("core", "knobs.js");
const { withGenerated, configTable } = await load("core", "schema.js");
const { PRETRAIN_SCHEMA } = await load("train", "config.js");
const { PIPELINE_SCHEMA } = await load("data", "pipeline", "config.js");

const pages = [
  ["docs/knobs.md", (text) => withKnobTable(text)],
  ["docs/pretrain.md", (text) => withGenerated(text, "pretrain-config", configTable(PRETRAIN_SCHEMA))],
  ["docs/data.md", (text) => withGenerated(text, "pipeline-config", configTable(PIPELINE_SCHEMA))],
];
for (const [page, rewrite] of pages) {
  const path = join(root, page);
  const before = readFileSync(path, "utf8");
  const after = rewrite(before);
  if (after === before) console.log(`${page}: the generated table is up to date`);
  else {
    writeFileSync(path, after);
    console.log(`${page}: generated table rewritten`);
  }
}
