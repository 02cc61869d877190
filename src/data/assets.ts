// Files that ship with the data stage (word lists), found relative to the repository root whether the
// code runs from src/ (ts) or dist/src/ (compiled).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let root: string | null = null;

function repoRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("data assets: no package.json above src/data");
    dir = up;
  }
  root = dir;
  return dir;
}

/** A path under src/data/ in the repository (e.g. dataAsset("wordlists", "ldnoobw")). */
export function dataAsset(...parts: string[]): string {
  return join(repoRoot(), "src", "data", ...parts);
}
