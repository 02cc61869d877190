// Files that ship with the data stage (word lists), found relative to the repository root whether the
// code runs from src/ (ts) or dist/src/ (compiled).
import { join } from "node:path";
import { packageRoot } from "../core/paths.js";

/** A path under src/data/ in the repository (e.g. dataAsset("wordlists", "ldnoobw")). */
export function dataAsset(...parts: string[]): string {
  return join(packageRoot(), "src", "data", ...parts);
}
