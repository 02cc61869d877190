// The identity of a run's input files — size, modification time and the SHA-256 of the first 64 KiB —
// recorded in <run>/inputs.json when the run starts. A resume compares: a file added, gone or changed
// since means the finished tasks read other data, so the run is refused rather than mixing old and new.
import { createHash } from "node:crypto";
import { closeSync, openSync, readSync, statSync } from "node:fs";

export interface InputIdentity {
  path: string;
  size: number;
  mtimeMs: number;
  /** SHA-256 (hex) of the first HEAD_BYTES bytes. */
  head: string;
}

const HEAD_BYTES = 64 << 10;

export function identify(path: string): InputIdentity {
  const st = statSync(path);
  const buf = Buffer.alloc(Math.min(HEAD_BYTES, st.size));
  const fd = openSync(path, "r");
  try {
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return {
      path,
      size: st.size,
      mtimeMs: st.mtimeMs,
      head: createHash("sha256").update(buf.subarray(0, off)).digest("hex"),
    };
  } finally {
    closeSync(fd);
  }
}

/** What differs between the recorded inputs and the files now, one line per file ([] when the same). */
export function inputChanges(recorded: InputIdentity[], now: string[]): string[] {
  const out: string[] = [];
  const current = new Set(now);
  const before = new Set(recorded.map((r) => r.path));
  for (const r of recorded) {
    if (!current.has(r.path)) {
      out.push(`${r.path}: gone`);
      continue;
    }
    let n: InputIdentity;
    try {
      n = identify(r.path);
    } catch (e) {
      out.push(`${r.path}: unreadable (${(e as Error).message})`);
      continue;
    }
    if (n.size !== r.size) out.push(`${r.path}: changed (size ${r.size} → ${n.size} bytes)`);
    else if (n.head !== r.head) out.push(`${r.path}: changed (its first bytes differ)`);
    else if (n.mtimeMs !== r.mtimeMs) out.push(`${r.path}: changed (modified since the run started)`);
  }
  for (const p of now) if (!before.has(p)) out.push(`${p}: added`);
  return out;
}
