// Binary hand-off files between pipeline stages: typed arrays written atomically (temp + rename) and read
// back whole or in slices, and small JSON files the same way.
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { writeFileAtomic } from "../io/atomic.js";

/** Writes a file atomically (src/io/atomic.ts). */
export const writeAtomic = writeFileAtomic;

type Typed = Uint32Array | Float64Array | Int32Array;

export function writeTyped(path: string, a: Typed): void {
  writeAtomic(path, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}

function bytesOf(path: string): Buffer {
  return readFileSync(path);
}

export function readU32(path: string): Uint32Array {
  const b = bytesOf(path);
  const out = new Uint32Array(b.length / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

export function readF64(path: string): Float64Array {
  const b = bytesOf(path);
  const out = new Float64Array(b.length / 8);
  new Uint8Array(out.buffer).set(b);
  return out;
}

/** `count` uint32 values starting at element `start` of a file. */
export function readU32Slice(path: string, start: number, count: number): Uint32Array {
  const out = new Uint32Array(count);
  const fd = openSync(path, "r");
  try {
    const buf = new Uint8Array(out.buffer);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, start * 4 + off);
      if (n === 0) throw new Error(`${path}: short read at element ${start}`);
      off += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

export function fileSize(path: string): number {
  return statSync(path).size;
}

export function writeJson(path: string, value: unknown): void {
  writeAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8")) as T;
}
