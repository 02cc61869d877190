// Tokenised shards: the packed token files pre-training reads. Format version 1, little-endian:
//
//   offset  size  field
//   0       8     magic "HERDTOKS"
//   8       4     version (1)
//   12      4     dtype (1 = uint32; other codes are refused)
//   16      4     vocabulary size (every token id is below it)
//   20      4     reserved (0)
//   24      8     number of tokens N (u64)
//   32      8     number of documents D (u64)
//   40      24    reserved (0)
//   64      4N    tokens, uint32
//   64+4N   8D+8  document index: the token offset where each document starts, then N (u64 each)
//
// Documents are stored back to back (with BOS/EOS if the tokenizer step adds them), so a loader can cut
// fixed-length windows and build document attention masks from the index. Written under a temporary
// name and renamed into place on close.

import { closeSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { tempPath } from "../io/atomic.js";

export const SHARD_MAGIC = "HERDTOKS";
export const SHARD_VERSION = 1;
export const DTYPE_UINT32 = 1;
const HEADER = 64;

/** Anything that turns text into token ids (the Llama 3 tokenizer, or another). */
export interface Encoder {
  encode(text: string): number[];
}

export class TokenShardWriter {
  private fd: number;
  private readonly tmp: string;
  private buf = new Uint32Array(1 << 16);
  private fill = 0;
  private numTokens = 0;
  private offset = HEADER;
  private readonly starts: number[] = [];
  constructor(
    readonly path: string,
    readonly vocabSize: number,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    this.tmp = tempPath(path);
    this.fd = openSync(this.tmp, "w");
    writeSync(this.fd, new Uint8Array(HEADER), 0, HEADER, 0);
  }

  /** Appends one document's tokens. */
  addDocument(tokens: ArrayLike<number>): void {
    this.starts.push(this.numTokens);
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (!(t >= 0 && t < this.vocabSize && Number.isInteger(t)))
        throw new Error(`token shard: id ${t} outside the vocabulary (0..${this.vocabSize - 1})`);
      this.buf[this.fill++] = t;
      if (this.fill === this.buf.length) this.flush();
    }
    this.numTokens += tokens.length;
  }

  private flush(): void {
    if (this.fill === 0) return;
    this.offset += writeSync(
      this.fd,
      new Uint8Array(this.buf.buffer, 0, this.fill * 4),
      0,
      this.fill * 4,
      this.offset,
    );
    this.fill = 0;
  }

  get documents(): number {
    return this.starts.length;
  }
  get tokens(): number {
    return this.numTokens;
  }

  close(): void {
    this.flush();
    const index = new BigUint64Array(this.starts.length + 1);
    this.starts.forEach((s, i) => {
      index[i] = BigInt(s);
    });
    index[this.starts.length] = BigInt(this.numTokens);
    writeSync(this.fd, new Uint8Array(index.buffer), 0, index.byteLength, this.offset);
    const h = Buffer.alloc(HEADER);
    h.write(SHARD_MAGIC, 0, "latin1");
    h.writeUInt32LE(SHARD_VERSION, 8);
    h.writeUInt32LE(DTYPE_UINT32, 12);
    h.writeUInt32LE(this.vocabSize, 16);
    h.writeBigUInt64LE(BigInt(this.numTokens), 24);
    h.writeBigUInt64LE(BigInt(this.starts.length), 32);
    writeSync(this.fd, h, 0, HEADER, 0);
    closeSync(this.fd);
    renameSync(this.tmp, this.path);
  }

  abort(): void {
    try {
      closeSync(this.fd);
    } catch {
      // closed
    }
    rmSync(this.tmp, { force: true });
  }
}

export class TokenShardReader {
  readonly version: number;
  readonly vocabSize: number;
  readonly numTokens: number;
  readonly numDocs: number;
  /** Token offset of each document's start, then numTokens (length numDocs + 1). */
  readonly docStarts: Float64Array;
  private fd: number;

  constructor(readonly path: string) {
    this.fd = openSync(path, "r");
    const h = Buffer.alloc(HEADER);
    if (readSync(this.fd, h, 0, HEADER, 0) !== HEADER) throw this.fail("shorter than its header");
    if (h.toString("latin1", 0, 8) !== SHARD_MAGIC) throw this.fail("not a herd token shard (bad magic)");
    this.version = h.readUInt32LE(8);
    if (this.version !== SHARD_VERSION)
      throw this.fail(`version ${this.version}; this reader knows ${SHARD_VERSION}`);
    const dtype = h.readUInt32LE(12);
    if (dtype !== DTYPE_UINT32) throw this.fail(`dtype code ${dtype}; this reader knows 1 (uint32)`);
    this.vocabSize = h.readUInt32LE(16);
    this.numTokens = Number(h.readBigUInt64LE(24));
    this.numDocs = Number(h.readBigUInt64LE(32));
    const idx = Buffer.alloc((this.numDocs + 1) * 8);
    const got = readSync(this.fd, idx, 0, idx.length, HEADER + this.numTokens * 4);
    if (got !== idx.length) throw this.fail("document index missing (truncated file)");
    this.docStarts = new Float64Array(this.numDocs + 1);
    for (let i = 0; i <= this.numDocs; i++) this.docStarts[i] = Number(idx.readBigUInt64LE(i * 8));
    if (this.docStarts[this.numDocs] !== this.numTokens)
      throw this.fail("document index does not end at the token count");
  }

  private fail(why: string): Error {
    try {
      closeSync(this.fd);
    } catch {
      // closed
    }
    return new Error(`${this.path}: ${why}`);
  }

  /** `count` tokens from token offset `start`. */
  tokens(start: number, count: number): Uint32Array {
    if (start < 0 || count < 0 || start + count > this.numTokens)
      throw new RangeError(`tokens ${start}..${start + count} outside 0..${this.numTokens}`);
    const out = new Uint32Array(count);
    const bytes = new Uint8Array(out.buffer);
    let off = 0;
    while (off < bytes.length) {
      const n = readSync(this.fd, bytes, off, bytes.length - off, HEADER + start * 4 + off);
      if (n === 0) throw new Error(`${this.path}: short read`);
      off += n;
    }
    return out;
  }

  /** The tokens of document i. */
  document(i: number): Uint32Array {
    if (i < 0 || i >= this.numDocs) throw new RangeError(`document ${i} outside 0..${this.numDocs - 1}`);
    return this.tokens(this.docStarts[i]!, this.docStarts[i + 1]! - this.docStarts[i]!);
  }

  /** Index of the document containing token offset `pos` (binary search). */
  documentAt(pos: number): number {
    let lo = 0;
    let hi = this.numDocs - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.docStarts[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  close(): void {
    closeSync(this.fd);
  }
}
