// Atomic, durable file writes, used by every stage: data goes to a temporary file beside the target,
// is flushed to disk (fsync), then renamed over it, and the folder is flushed so the rename itself
// survives a power loss; a reader (or a resume after kill -9 or a crash) sees either the old file or
// the new one, never half of one. Temporary names end in `.tmp-PID-RANDOM`, which the data pipeline's
// resume sweeps.
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";

/** A fresh temporary path beside `path` (same folder, so the rename stays on one file system). */
export function tempPath(path: string): string {
  return `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Flush a file's data to disk. */
export function fsyncFile(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Flush a folder's entries (creations, renames) to disk. Platforms that cannot open a folder
 * (Windows: EPERM, EISDIR) or fsync one (EINVAL) are left as they are: they journal the rename.
 */
export function fsyncDir(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    if (["EPERM", "EISDIR", "EACCES"].includes((e as NodeJS.ErrnoException).code ?? "")) return;
    throw e;
  }
  try {
    fsyncSync(fd);
  } catch (e) {
    if (!["EINVAL", "EPERM", "EBADF"].includes((e as NodeJS.ErrnoException).code ?? "")) throw e;
  } finally {
    closeSync(fd);
  }
}

/** Flush every file under `dir` (recursively), then each folder, `dir` last. */
export function fsyncTree(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) fsyncTree(p);
    else if (e.isFile()) fsyncFile(p);
  }
  fsyncDir(dir);
}

/**
 * Writes `data` to `path` atomically and durably (file flushed before the rename, folder after it),
 * creating its folder; on failure the temporary file is removed.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPath(path);
  try {
    const fd = openSync(tmp, "w");
    try {
      const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dirname(path));
}
