// Common Crawl WARC and WET files (gzip per record, or plain), parsed with webrecorder's warcio.
// WARC: `response` records whose HTTP Content-Type is HTML become documents through htmlToText (decoded by
// the charset the header or the page names); WET: `conversion` records are already text. Each document
// carries the record's URL, its WARC-Record-ID as id, and the crawl date (WARC-Date) in meta.date, which
// URL dedup uses to keep the most recent crawl. A corrupt or truncated file is reported, not thrown.
import { WARCParser } from "warcio";
import type { Document } from "../document.js";
import { decodeHtml, detectCharset, htmlToText } from "../html.js";
import type { IssueSink } from "../issues.js";
import { readBytes, TruncatedInput } from "./bytes.js";

export interface WarcReadOptions {
  onIssue?: IssueSink;
  /** Drop pages whose extracted text is shorter than this many characters (default 0: keep all). */
  minChars?: number;
}

const HTML = /^(text\/html|application\/xhtml\+xml)/i;

export async function* readWarc(path: string, opts: WarcReadOptions = {}): AsyncGenerator<Document> {
  // Decompressing ourselves (rather than letting warcio do it) is what notices a file cut short.
  const parser = new WARCParser(readBytes(path));
  let n = 0;
  try {
    for await (const rec of parser) {
      n++;
      const type = rec.warcType;
      const url = rec.warcTargetURI ?? undefined;
      const id = rec.warcHeader("WARC-Record-ID") ?? `${path}#${n}`;
      const date = rec.warcHeader("WARC-Date") ?? undefined;
      let text: string | null = null;
      const meta: Record<string, unknown> = { source: "warc" };
      if (date) meta.date = date;
      if (type === "conversion") {
        text = await rec.contentText();
        meta.source = "wet";
      } else if (type === "response") {
        const ct = rec.httpHeaders?.headers.get("content-type") ?? null;
        const status = rec.httpHeaders?.statusCode;
        if (!ct || !HTML.test(ct) || (status !== undefined && status !== 200)) {
          await rec.skipFully();
          continue;
        }
        const bytes = await rec.readFully(true);
        text = htmlToText(decodeHtml(bytes, detectCharset(ct, bytes)));
      } else {
        await rec.skipFully();
        continue;
      }
      if (text.length < (opts.minChars ?? 0) || text.trim() === "") continue;
      const doc: Document = { id: id.replace(/^<|>$/g, ""), text, meta };
      if (url) doc.url = url;
      yield doc;
    }
  } catch (e) {
    opts.onIssue?.({
      file: path,
      line: n,
      kind: e instanceof TruncatedInput ? "truncated" : "format",
      message: `WARC record ${n}: ${(e as Error).message}`,
      action: "stopped",
    });
  }
}
