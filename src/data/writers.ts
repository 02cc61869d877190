// JSONL writers. Every file is written to a temporary name beside its target and renamed into place on
// close, so a reader (or a resumed run) never sees half a file. `JsonlShardWriter` starts a new numbered
// file when one reaches a document or byte limit. gzip output (".gz" names) is deterministic: zlib gives
// the same bytes for the same input and level.

import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { createGzip, type Gzip } from "node:zlib";
import { tempPath } from "../io/atomic.js";
import { type Document, documentToJson } from "./document.js";

/** A file written under a temporary name and renamed into place by close(). */
export class AtomicFile {
  private fd: number;
  private readonly tmp: string;
  private gzip: Gzip | null = null;
  bytes = 0;
  constructor(
    readonly path: string,
    opts: { gzip?: boolean } = {},
  ) {
    mkdirSync(dirname(path), { recursive: true });
    this.tmp = tempPath(path);
    this.fd = openSync(this.tmp, "w");
    if (opts.gzip) {
      this.gzip = createGzip({ level: 6 });
      this.gzip.on("data", (c: Buffer) => writeSync(this.fd, c));
    }
  }
  write(data: string | Uint8Array): void {
    const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    this.bytes += buf.length;
    if (this.gzip) {
      this.gzip.write(buf);
      return;
    }
    writeSync(this.fd, buf);
  }
  async close(): Promise<void> {
    if (this.gzip) {
      const gz = this.gzip;
      await new Promise<void>((res, rej) => {
        gz.on("end", res);
        gz.on("error", rej);
        gz.end();
      });
    }
    closeSync(this.fd);
    renameSync(this.tmp, this.path);
  }
  /** Gives up: removes the temporary file. */
  abort(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    rmSync(this.tmp, { force: true });
  }
}

/** Writes documents as JSONL to one file, atomically. */
export class JsonlWriter {
  private file: AtomicFile;
  docs = 0;
  constructor(readonly path: string) {
    this.file = new AtomicFile(path, { gzip: path.endsWith(".gz") });
  }
  write(doc: Document): void {
    this.file.write(`${documentToJson(doc)}\n`);
    this.docs++;
  }
  get bytes(): number {
    return this.file.bytes;
  }
  close(): Promise<void> {
    return this.file.close();
  }
  abort(): void {
    this.file.abort();
  }
}

export interface ShardOptions {
  /** Start a new file after this many documents (default: no limit). */
  maxDocs?: number;
  /** Start a new file after this many uncompressed bytes (default: no limit). */
  maxBytes?: number;
  /** File suffix: ".jsonl" (default) or ".jsonl.gz". */
  suffix?: string;
}

/** `<prefix>-00000.jsonl`, `<prefix>-00001.jsonl`, ... each closed atomically when full. */
export class JsonlShardWriter {
  private current: JsonlWriter | null = null;
  private index = 0;
  readonly paths: string[] = [];
  private pending: Promise<void>[] = [];
  /** Documents written so far, over all files. */
  docs = 0;
  constructor(
    readonly prefix: string,
    readonly opts: ShardOptions = {},
  ) {}
  write(doc: Document): void {
    if (!this.current) {
      const p = `${this.prefix}-${String(this.index++).padStart(5, "0")}${this.opts.suffix ?? ".jsonl"}`;
      this.current = new JsonlWriter(p);
      this.paths.push(p);
    }
    this.current.write(doc);
    this.docs++;
    const full =
      (this.opts.maxDocs !== undefined && this.current.docs >= this.opts.maxDocs) ||
      (this.opts.maxBytes !== undefined && this.current.bytes >= this.opts.maxBytes);
    if (full) {
      this.pending.push(this.current.close());
      this.current = null;
    }
  }
  async close(): Promise<string[]> {
    if (this.current) this.pending.push(this.current.close());
    this.current = null;
    await Promise.all(this.pending);
    return this.paths;
  }
  abort(): void {
    this.current?.abort();
  }
}
