// Common Crawl WARC and WET files (gzip per record, or plain), parsed with webrecorder's warcio.
// WARC: `response` records whose HTTP Content-Type is HTML become documents through htmlToText (decoded by
// the charset the header or the page names); WET: `conversion` records are already text. Each document
// carries the record's URL, its WARC-Record-ID as id, and the crawl date (WARC-Date) in meta.date, which
// URL dedup uses to keep the most recent crawl. A corrupt or truncated file is reported with the record's
// number and byte offset (of the decompressed stream), not thrown; every whole record before it is read.
// Records are skipped with our own loop, never warcio's skipFully, which spins forever on a record that
// runs past the end of the file. A record to be read whole is skipped (and reported) above
// maxRecordBytes, so memory stays bounded whatever a file claims.
import { LimitReader, WARCParser, type WARCRecord } from "warcio";
import type { Document } from "../document.js";
import { decodeHtml, detectCharset, htmlToText } from "../html.js";
import type { IssueSink } from "../issues.js";
import { readBytes, sniffCompression, TruncatedInput } from "./bytes.js";

export interface WarcReadOptions {
  onIssue?: IssueSink;
  /** Drop pages whose extracted text is shorter than this many characters (default 0: keep all). */
  minChars?: number;
  /** Records to be read whole that are larger than this are skipped and reported (default 64 MiB). */
  maxRecordBytes?: number;
}

const HTML = /^(text\/html|application\/xhtml\+xml)/i;

/** Largest record content read into memory by default (Common Crawl truncates responses far below). */
export const MAX_RECORD_BYTES = 64 << 20;

class WarcFormatError extends Error {}

/** Skips what is left of the record's content; returns how many of its bytes the file is missing. */
async function finishRecord(rec: WARCRecord): Promise<number> {
  const r = rec._reader;
  if (!(r instanceof LimitReader)) return 0;
  while (r.limit > 0) {
    const n = await r.sourceIter.skipSize(r.limit);
    if (n === 0) break; // end of the file
    r.limit -= n;
  }
  return Math.max(0, r.limit);
}

export async function* readWarc(path: string, opts: WarcReadOptions = {}): AsyncGenerator<Document> {
  // Decompressing ourselves (rather than letting warcio do it) is what notices a file cut short.
  const where = (await sniffCompression(path)) === "none" ? "" : " of the decompressed data";
  let ended = false;
  async function* source(): AsyncGenerator<Buffer> {
    yield* readBytes(path);
    ended = true;
  }
  const parser = new WARCParser(source());
  const maxBytes = opts.maxRecordBytes ?? MAX_RECORD_BYTES;
  let n = 0;
  let offset = 0;
  const issue = (kind: "truncated" | "format" | "record", message: string, action: "stopped" | "skipped") =>
    opts.onIssue?.({
      file: path,
      line: n,
      kind,
      message: `WARC record ${n} at offset ${offset}${where}: ${message}`,
      action,
    });
  try {
    for await (const rec of parser) {
      n++;
      offset = parser.offset;
      const cl = rec.warcHeaders.headers.get("Content-Length")?.trim() ?? "";
      if (!/^\d+$/.test(cl) || !rec.warcHeaders.statusline.startsWith("WARC/")) {
        if (ended) throw new TruncatedInput("the file ends inside the record's headers");
        throw new WarcFormatError("not a WARC record header (no WARC/ version line or Content-Length)");
      }
      const type = rec.warcType;
      const url = rec.warcTargetURI ?? undefined;
      const id = rec.warcHeader("WARC-Record-ID") ?? `${path}#${n}`;
      const date = rec.warcHeader("WARC-Date") ?? undefined;
      let text: string | null = null;
      const meta: Record<string, unknown> = { source: "warc" };
      if (date) meta.date = date;
      const ct = type === "response" ? (rec.httpHeaders?.headers.get("content-type") ?? null) : null;
      const status = rec.httpHeaders?.statusCode;
      const wanted =
        type === "conversion" ||
        (type === "response" && ct !== null && HTML.test(ct) && (status === undefined || status === 200));
      if (wanted && Number(cl) > maxBytes) {
        issue("record", `${cl} bytes, over the limit of ${maxBytes}`, "skipped");
      } else if (type === "conversion") {
        text = await rec.contentText();
        meta.source = "wet";
      } else if (wanted) {
        const bytes = await rec.readFully(true);
        text = htmlToText(decodeHtml(bytes, detectCharset(ct!, bytes)));
      }
      const missing = await finishRecord(rec);
      if (missing > 0)
        throw new TruncatedInput(
          `the record runs past the end of the file (${missing} of its ${cl} bytes missing)`,
        );
      if (text === null || text.length < (opts.minChars ?? 0) || text.trim() === "") continue;
      const doc: Document = { id: id.replace(/^<|>$/g, ""), text, meta };
      if (url) doc.url = url;
      yield doc;
    }
  } catch (e) {
    issue(e instanceof TruncatedInput ? "truncated" : "format", (e as Error).message, "stopped");
  }
}
