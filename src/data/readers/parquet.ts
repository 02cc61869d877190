// Parquet files (the format public datasets ship in), read with hyparquet, pure JS, with its decompressors
// (snappy, gzip, zstd, brotli, lz4). Rows are read a slice at a time so memory stays bounded; `text`, `id`
// and `url` columns (names configurable) make the document and every other column goes to meta.
import { basename } from "node:path";
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { type Document, documentFromRecord } from "../document.js";
import type { IssueSink } from "../issues.js";

export interface ParquetReadOptions {
  textField?: string;
  idField?: string;
  urlField?: string;
  onIssue?: IssueSink;
  /** Rows decoded at a time (default 2048). */
  batchRows?: number;
}

/** JSON-safe copy of a Parquet value (bigint → number or string, bytes → base64). */
function jsonSafe(v: unknown): unknown {
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (v && typeof v === "object") {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = jsonSafe(x);
    return o;
  }
  return v;
}

export async function* readParquet(path: string, opts: ParquetReadOptions = {}): AsyncGenerator<Document> {
  const name = basename(path);
  const fields = { text: opts.textField, id: opts.idField, url: opts.urlField };
  let rows = 0;
  let file: Awaited<ReturnType<typeof asyncBufferFromFile>>;
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    file = await asyncBufferFromFile(path);
    metadata = await parquetMetadataAsync(file);
    rows = Number(metadata.num_rows);
  } catch (e) {
    opts.onIssue?.({
      file: path,
      kind: "format",
      message: `not a readable Parquet file: ${(e as Error).message}`,
      action: "stopped",
    });
    return;
  }
  const step = opts.batchRows ?? 2048;
  for (let start = 0; start < rows; start += step) {
    let batch: Record<string, unknown>[];
    try {
      batch = await parquetReadObjects({
        file,
        metadata,
        compressors,
        rowStart: start,
        rowEnd: Math.min(rows, start + step),
      });
    } catch (e) {
      opts.onIssue?.({
        file: path,
        line: start + 1,
        kind: "format",
        message: `rows ${start + 1}..: ${(e as Error).message}`,
        action: "stopped",
      });
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const doc = documentFromRecord(jsonSafe(batch[i]), `${name}:${start + i + 1}`, fields);
      if (typeof doc === "string") {
        opts.onIssue?.({ file: path, line: start + i + 1, kind: "record", message: doc, action: "skipped" });
        continue;
      }
      yield doc;
    }
  }
}
