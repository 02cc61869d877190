// Files around the BPE trainer: reading a corpus (plain text files, and JSONL files whose records carry
// the text in a field, "text" by default) into a piece counter with progress by bytes, and writing the
// trained vocabulary atomically as a tiktoken-format ranks file plus a JSON description beside it.
import { createReadStream, readFileSync, statSync } from "node:fs";
import { createInterface } from "node:readline";
import { writeFileAtomic } from "../io/atomic.js";
import { META_PATTERN } from "./pattern.js";
import { formatRanks, sha256Hex } from "./ranks.js";
import { llama3SpecialTokens } from "./specialTokens.js";
import type { PieceCounter, TrainResult } from "./train.js";

export interface ReadCorpusOptions {
  /** JSONL field holding the text (default "text"). */
  field?: string;
  /** Called with bytes read so far and the total size of all files. */
  onBytes?: (done: number, total: number) => void;
}

export function isJsonl(path: string): boolean {
  return /\.(jsonl|ndjson)$/i.test(path);
}

/** Feeds every text of the files to the counter. Malformed JSONL lines fail with file and line. */
export async function countCorpus(
  paths: readonly string[],
  counter: PieceCounter,
  o: ReadCorpusOptions = {},
): Promise<void> {
  const field = o.field ?? "text";
  const total = paths.reduce((n, p) => n + statSync(p).size, 0);
  let done = 0;
  for (const path of paths) {
    if (!isJsonl(path)) {
      const bytes = readFileSync(path);
      counter.add(new TextDecoder().decode(bytes));
      done += bytes.length;
      o.onBytes?.(done, total);
      continue;
    }
    const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
    let lineNo = 0;
    let sinceReport = 0;
    for await (const line of lines) {
      lineNo++;
      const size = Buffer.byteLength(line) + 1;
      done += size;
      sinceReport += size;
      if (line.trim() === "") continue;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch (err) {
        throw new Error(`${path}:${lineNo}: not valid JSON (${(err as Error).message})`);
      }
      const text = (record as Record<string, unknown> | null)?.[field];
      if (typeof text !== "string") throw new Error(`${path}:${lineNo}: no string field "${field}"`);
      counter.add(text);
      if (sinceReport > 1 << 20) {
        sinceReport = 0;
        o.onBytes?.(Math.min(done, total), total);
      }
    }
    o.onBytes?.(Math.min(done, total), total);
  }
}

/** Writes `path` (ranks, tiktoken format) and `path + ".json"` (what was trained, how). */
export function writeTrainedTokenizer(
  path: string,
  result: TrainResult,
  info: Record<string, unknown> = {},
): void {
  const ranksText = formatRanks(result.tokens);
  const numRanks = result.tokens.length;
  writeFileAtomic(path, ranksText);
  const description = {
    format: "tiktoken ranks (base64 token, space, rank); special tokens follow the ranks",
    numRanks,
    vocabSize: numRanks + 256,
    sha256: sha256Hex(new TextEncoder().encode(ranksText)),
    pattern: META_PATTERN,
    specialTokens: Object.fromEntries(llama3SpecialTokens(numRanks)),
    tieBreak: "highest pair count; ties: smaller left id, then smaller right id (bytes are ids 0-255)",
    distinctPieces: result.distinctPieces,
    totalPieces: result.totalPieces,
    ...info,
  };
  writeFileAtomic(`${path}.json`, `${JSON.stringify(description, null, 2)}\n`);
}
