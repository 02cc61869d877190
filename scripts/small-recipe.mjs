// The small post-training recipe end to end (src/recipe/smallRecipe.ts), as compiled to dist/ (run
// `npm run build:ts` first): `node scripts/small-recipe.mjs examples/small-recipe/recipe.json` generates
// the tasks, pre-trains the tiny base, runs the post-training rounds and prints the held-out accuracy
// of the base, the SFT model and the RS + DPO model as a Markdown table (also in OUT/accuracy.json, and
// each model's harness results in OUT/eval/<model>/ for `herd eval compare`). Paths in the file are
// relative to the current directory; a rerun resumes (every stage is kept in OUT).
import { readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { runSmallRecipe } = await import(
  pathToFileURL(join(root, "dist", "src", "recipe", "smallRecipe.js")).href
);
const file = process.argv[2];
if (!file) {
  process.stderr.write("usage: node scripts/small-recipe.mjs RECIPE.json\n");
  process.exit(2);
}
const opts = JSON.parse(readFileSync(file, "utf8"));
const t0 = performance.now();
const secs = () => ((performance.now() - t0) / 1000).toFixed(0);
const r = await runSmallRecipe(opts, (line) => process.stdout.write(`[${secs()} s] ${line}\n`));
const pct = (x) => `${(100 * x).toFixed(1)}%`;
const table = [
  `Held-out accuracy on ${r.heldout} ${opts.arithmetic ? "arithmetic " : ""}tasks (seed ${opts.seed}), ${file}:`,
  "",
  "| model | held-out accuracy |",
  "|---|--:|",
  `| base (pre-trained) | ${pct(r.accuracy.base)} |`,
  `| after SFT (round 1) | ${pct(r.accuracy.sft)} |`,
  `| after RS + DPO (round ${opts.rounds?.rounds ?? 2}) | ${pct(r.accuracy.final)} |`,
  "",
  `${secs()} s on ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${new Date().toISOString().slice(0, 10)}`,
];
writeFileSync(join(opts.out, "accuracy.json"), `${JSON.stringify(r, null, 2)}\n`);
process.stdout.write(`${table.join("\n")}\n`);
