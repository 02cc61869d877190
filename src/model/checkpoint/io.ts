// Byte-level file I/O shared by the checkpoint readers and writers.
//
// Positional reads straight into each tensor's own buffer: a checkpoint file is never read whole, and
// the only extra memory is one fixed-size scratch chunk when a stored dtype is converted on the way in
// (bf16/f16 → f32) or out (f32 → bf16/f16).
//
// The I/O is synchronous (readSync/writeSync on a file descriptor) on purpose: an f32 tensor's buffer
// may be a view into a backend's WebAssembly.Memory, and an allocation elsewhere during an `await`
// could grow that memory and detach the view mid-read. The public functions stay async so a later
// version can change this without changing callers.
//
// Every checkpoint or config file is opened as a regular file (src/io/regular.ts), so a FIFO, socket,
// device or directory in its place is an error naming the path, not a read that waits forever. Files
// read whole (config, params, index) are size-checked against a limit before any buffer is allocated.
//
// All formats here are little-endian; so is every platform Node runs on (checked once below).
import { closeSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from "node:fs";
import { endianness } from "node:os";
import { basename, dirname, join } from "node:path";
import { fsyncDir, fsyncFile } from "../../io/atomic.js";
import { openRegular } from "../../io/regular.js";
import { type DType, decodeHalf, encodeHalf } from "../../tensor/dtype.js";

export { MAX_JSON_BYTES, openRegular, readRegularFile } from "../../io/regular.js";

if (endianness() !== "LE") throw new Error("herd checkpoints: a big-endian host is not supported");

/** Elements converted per chunk (4 MiB of f32). */
const CHUNK = 1 << 20;
/** Largest single readSync/writeSync (Node caps a call near 2 GiB). */
const MAX_IO = 1 << 30;

/** The bytes of a typed array, as a Uint8Array view (no copy). */
export function bytesOf(a: Float32Array | Uint16Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** A file opened for positional reads; `name` is what error messages call it. */
export class ReadFile {
  readonly fd: number;
  readonly size: number;
  constructor(readonly path: string) {
    ({ fd: this.fd, size: this.size } = openRegular(path));
  }

  /** Fill `buf` from `position`; a short read means the file ends early (`what` names the record). */
  readExact(buf: Uint8Array, position: number, what: string): void {
    let done = 0;
    while (done < buf.length) {
      const len = Math.min(buf.length - done, MAX_IO);
      const n = readSync(this.fd, buf, done, len, position + done);
      if (n === 0)
        throw new Error(
          `${this.path}: ${what}: file ends at byte ${position + done}, needed ${position + buf.length} (truncated file?)`,
        );
      done += n;
    }
  }

  /** A fresh buffer with `length` bytes from `position`. */
  readBytes(position: number, length: number, what: string): Uint8Array {
    const buf = new Uint8Array(length);
    this.readExact(buf, position, what);
    return buf;
  }

  /**
   * Read `count` elements stored as `stored` from `position` into `out` starting at element `outAt`.
   * `out` is a Float32Array (f32 result: half storage is decoded chunk by chunk) or, for half storage
   * kept as is, a Uint16Array of the same dtype.
   */
  readElements(
    position: number,
    stored: DType,
    count: number,
    out: Float32Array | Uint16Array,
    outAt: number,
    what: string,
  ): void {
    const target = out.subarray(outAt, outAt + count);
    if (target.length !== count) throw new Error(`${this.path}: ${what}: internal: output too small`);
    if (stored === "f32" || out instanceof Uint16Array) {
      if (stored === "f32" && !(out instanceof Float32Array))
        throw new Error(`${this.path}: ${what}: internal: f32 data into a half buffer`);
      this.readExact(bytesOf(target), position, what);
      return;
    }
    const scratch = new Uint16Array(Math.min(CHUNK, count));
    for (let i = 0; i < count; i += scratch.length) {
      const n = Math.min(scratch.length, count - i);
      const part = scratch.subarray(0, n);
      this.readExact(bytesOf(part), position + 2 * i, what);
      decodeHalf(part, stored, target.subarray(i, i + n) as Float32Array<ArrayBuffer>);
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Append-only writer over a file descriptor. */
export class WriteFile {
  readonly fd: number;
  position = 0;
  constructor(readonly path: string) {
    this.fd = openSync(path, "w");
  }

  write(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) {
      const len = Math.min(bytes.length - done, MAX_IO);
      done += writeSync(this.fd, bytes, done, len, this.position + done);
    }
    this.position += bytes.length;
  }

  /** Write values held as `held` (f32 array or half bits) stored as `stored`, converting in chunks. */
  writeElements(data: Float32Array | Uint16Array, held: DType, stored: DType): void {
    if (held === stored) {
      this.write(bytesOf(data));
      return;
    }
    for (let i = 0; i < data.length; i += CHUNK) {
      const part = data.subarray(i, Math.min(i + CHUNK, data.length));
      const f32 = part instanceof Float32Array ? part : decodeHalf(part, held as "bf16" | "f16");
      this.write(bytesOf(stored === "f32" ? f32 : encodeHalf(f32, stored)));
    }
  }

  /** Flush to disk and close (call before renaming the file into place). */
  close(): void {
    fsyncSync(this.fd);
    closeSync(this.fd);
  }

  /** Close without flushing (after an error). */
  abandon(): void {
    closeSync(this.fd);
  }
}

/** Run fn with a ReadFile, closing it afterwards. */
export function withReadFile<T>(path: string, fn: (f: ReadFile) => T): T {
  const f = new ReadFile(path);
  try {
    return fn(f);
  } finally {
    f.close();
  }
}

/**
 * Files written under temporary names and renamed into place together by `commit()`, so a reader never
 * sees a half-written file (a crash leaves only `.NAME.tmp-*` files behind). `abort()` removes them.
 * commit() flushes each file to the disk before its rename and each folder after (fsync), so the files
 * survive a power loss, not only a killed process.
 */
export class AtomicFiles {
  private pending: [tmp: string, final: string][] = [];

  /** A temporary path beside `finalPath` to write to. */
  temp(finalPath: string): string {
    const tmp = join(
      dirname(finalPath),
      `.${basename(finalPath)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`,
    );
    this.pending.push([tmp, finalPath]);
    return tmp;
  }

  commit(): void {
    for (const [tmp] of this.pending) fsyncFile(tmp);
    for (const [tmp, final] of this.pending) renameSync(tmp, final);
    for (const d of new Set(this.pending.map(([, final]) => dirname(final)))) fsyncDir(d);
    this.pending = [];
  }

  abort(): void {
    for (const [tmp] of this.pending) rmSync(tmp, { force: true });
    this.pending = [];
  }
}
