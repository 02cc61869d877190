// Raw bytes of an input file, decompressed by sniffing its first bytes: gzip (node's zlib, multi-member
// files included) or Zstandard (fzstd, pure JS; node 20's zlib has no zstd). A file cut short raises
// `TruncatedInput` after every byte that could be decoded has been yielded.
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { createGunzip } from "node:zlib";
import { Decompress } from "fzstd";

export class TruncatedInput extends Error {}

export type Compression = "none" | "gzip" | "zstd";

export async function sniffCompression(path: string): Promise<Compression> {
  const fh = await open(path, "r");
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    if (bytesRead >= 2 && b[0] === 0x1f && b[1] === 0x8b) return "gzip";
    if (bytesRead === 4 && b.readUInt32LE(0) === 0xfd2fb528) return "zstd";
    return "none";
  } finally {
    await fh.close();
  }
}

/** Decompressed chunks of the file. Throws TruncatedInput when compressed data ends early. */
export async function* readBytes(path: string): AsyncGenerator<Buffer> {
  const kind = await sniffCompression(path);
  if (kind === "none") {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) yield chunk as Buffer;
    return;
  }
  if (kind === "gzip") {
    const gz = createReadStream(path, { highWaterMark: 1 << 20 }).pipe(createGunzip());
    try {
      for await (const chunk of gz) yield chunk as Buffer;
    } catch (e) {
      const msg = (e as Error).message;
      if (/unexpected end of file/i.test(msg)) throw new TruncatedInput(`gzip data ends early (${msg})`);
      throw new TruncatedInput(`gzip data is corrupt (${msg})`);
    }
    return;
  }
  // zstd: fzstd's streaming decompressor calls back synchronously from push().
  const pending: Buffer[] = [];
  const z = new Decompress((data) => {
    pending.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    try {
      z.push(chunk as Buffer);
    } catch (e) {
      yield* pending.splice(0);
      throw new TruncatedInput(`zstd data is corrupt (${(e as Error).message})`);
    }
    yield* pending.splice(0);
  }
  try {
    z.push(new Uint8Array(0), true);
  } catch (e) {
    yield* pending.splice(0);
    throw new TruncatedInput(`zstd data ends early (${(e as Error).message})`);
  }
  yield* pending.splice(0);
}
