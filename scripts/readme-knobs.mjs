// Rewrites the generated tables in README.md from their declarations, as compiled to dist/ (run
// `npm run build` first): the knobs table (between <!-- knobs:begin --> and <!-- knobs:end -->, from
// src/core/knobs.ts) and the pre-training config's fields (<!-- pretrain-config:begin/end -->, from
// PRETRAIN_SCHEMA in src/train/config.ts, rendered by src/core/schema.ts's configTable).
// test/core/knobs.test.ts and test/train/configSchema.test.ts fail while the README differs.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { withKnobTable } = await import(pathToFileURL(join(root, "dist", "src", "core", "knobs.js")).href);
const path = join(root, "README.md");
const before = readFileSync(path, "utf8");
const { withGenerated, configTable } = await import(
  pathToFileURL(join(root, "dist", "src", "core", "schema.js")).href
);
const { PRETRAIN_SCHEMA } = await import(pathToFileURL(join(root, "dist", "src", "train", "config.js")).href);
const after = withGenerated(withKnobTable(before), "pretrain-config", configTable(PRETRAIN_SCHEMA));
if (after === before) console.log("README.md: the generated tables are up to date");
else {
  writeFileSync(path, after);
  console.log("README.md: generated tables rewritten");
}
