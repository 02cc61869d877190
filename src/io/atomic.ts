// Atomic file writes, used by every stage: data goes to a temporary file beside the target, which is
// then renamed over it, so a reader (or a resume after kill -9) sees either the old file or the new one,
// never half of one. Temporary names end in `.tmp-PID-RANDOM`, which the data pipeline's resume sweeps.
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/** A fresh temporary path beside `path` (same folder, so the rename stays on one file system). */
export function tempPath(path: string): string {
  return `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Writes `data` to `path` atomically, creating its folder; on failure the temporary file is removed. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPath(path);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
