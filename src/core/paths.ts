// The package root: the folder holding herd's package.json, found by walking up from this module, so
// shipped files (build/kernels.wasm, the native addon, assets/, src/data/wordlists) are found whether the
// code runs from src/ (ts) or dist/src/ (compiled). Bottom layer (src/core/): imports nothing from herd.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let root: string | null = null;

/** Absolute path of the repository (the nearest folder holding package.json above this module). */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`herd: cannot find the package root (no package.json above ${dir})`);
    dir = up;
  }
  root = dir;
  return dir;
}
