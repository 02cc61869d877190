// JSONL reader (plain, gzip or zstd, sniffed): one JSON object per line with `text` and optional `id`,
// `url` (field names configurable); other fields go to meta. A broken JSON line, a line that is not
// valid UTF-8, or a file cut short is reported to the IssueSink with file and line and never stops the run;
// every good line before and after it is still read.
import { basename } from "node:path";
import { type Document, documentFromRecord } from "../document.js";
import type { IssueSink } from "../issues.js";
import { readBytes, TruncatedInput } from "./bytes.js";

export interface JsonlReadOptions {
  textField?: string;
  idField?: string;
  urlField?: string;
  /** Invalid UTF-8 in a line: "replace" keeps the document with U+FFFD (default), "skip" drops the line. */
  invalidUtf8?: "replace" | "skip";
  onIssue?: IssueSink;
}

const strict = new TextDecoder("utf-8", { fatal: true });
const lenient = new TextDecoder("utf-8");

export async function* readJsonl(path: string, opts: JsonlReadOptions = {}): AsyncGenerator<Document> {
  const name = basename(path);
  const fields = { text: opts.textField, id: opts.idField, url: opts.urlField };
  let lineNo = 0;
  let carry: Buffer = Buffer.alloc(0);

  const parseLine = (line: string, n: number): Document | null => {
    if (line.length === 0 || /^\s*$/.test(line)) return null;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      opts.onIssue?.({ file: path, line: n, kind: "json", message: (e as Error).message, action: "skipped" });
      return null;
    }
    const doc = documentFromRecord(rec, `${name}:${n}`, fields);
    if (typeof doc === "string") {
      opts.onIssue?.({ file: path, line: n, kind: "record", message: doc, action: "skipped" });
      return null;
    }
    return doc;
  };

  const decodeLine = (bytes: Buffer, n: number): string | null => {
    try {
      return strict.decode(bytes);
    } catch {
      const keep = opts.invalidUtf8 !== "skip";
      opts.onIssue?.({
        file: path,
        line: n,
        kind: "utf8",
        message: "line is not valid UTF-8",
        action: keep ? "kept" : "skipped",
      });
      return keep ? lenient.decode(bytes) : null;
    }
  };

  // Decodes a block of whole lines; the fast path decodes the block at once.
  function* block(buf: Buffer): Generator<Document> {
    let text: string | null = null;
    try {
      text = strict.decode(buf);
    } catch {
      text = null;
    }
    if (text !== null) {
      let start = 0;
      while (start < text.length) {
        let end = text.indexOf("\n", start);
        if (end < 0) end = text.length;
        lineNo++;
        const line = text.charCodeAt(end - 1) === 13 ? text.slice(start, end - 1) : text.slice(start, end);
        const d = parseLine(line, lineNo);
        if (d) yield d;
        start = end + 1;
      }
      return;
    }
    let start = 0;
    while (start < buf.length) {
      let end = buf.indexOf(10, start);
      if (end < 0) end = buf.length;
      lineNo++;
      const s = decodeLine(buf.subarray(start, end), lineNo);
      if (s !== null) {
        const d = parseLine(s.endsWith("\r") ? s.slice(0, -1) : s, lineNo);
        if (d) yield d;
      }
      start = end + 1;
    }
  }

  try {
    for await (const chunk of readBytes(path)) {
      const buf = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
      const last = buf.lastIndexOf(10);
      if (last < 0) {
        carry = buf;
        continue;
      }
      yield* block(buf.subarray(0, last));
      carry = Buffer.from(buf.subarray(last + 1));
    }
  } catch (e) {
    if (!(e instanceof TruncatedInput)) {
      opts.onIssue?.({
        file: path,
        line: lineNo + 1,
        kind: "io",
        message: (e as Error).message,
        action: "stopped",
      });
      return;
    }
    // The partial last line may still be a whole record; keep it if it parses, report either way.
    let kept = false;
    if (carry.length > 0) {
      const n = lineNo + 1;
      const s = decodeLine(carry, n);
      try {
        const d = s === null ? null : documentFromRecord(JSON.parse(s), `${name}:${n}`, fields);
        if (d && typeof d !== "string") {
          lineNo++;
          kept = true;
          yield d;
        }
      } catch {
        // not a whole record
      }
    }
    opts.onIssue?.({
      file: path,
      line: lineNo + (kept ? 0 : 1),
      kind: "truncated",
      message: `${e.message}; ${kept ? "the last line parsed and was kept" : "the partial last line was skipped"}`,
      action: "stopped",
    });
    return;
  }
  if (carry.length > 0) yield* block(carry);
}
