// Rewrites the knobs table in README.md (between <!-- knobs:begin --> and <!-- knobs:end -->) from the
// declarations in src/core/knobs.ts, as compiled to dist/ (run `npm run build` first).
// test/core/knobs.test.ts fails while the README's table differs from what this writes.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { withKnobTable } = await import(pathToFileURL(join(root, "dist", "src", "core", "knobs.js")).href);
const path = join(root, "README.md");
const before = readFileSync(path, "utf8");
const after = withKnobTable(before);
if (after === before) console.log("README.md: the knobs table is up to date");
else {
  writeFileSync(path, after);
  console.log("README.md: knobs table rewritten");
}
