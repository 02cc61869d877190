// The Document record every data block passes along: an id, the text, the URL it came from (web data),
// and free-form metadata that blocks annotate (language, quality score, domain class, dedup cluster...).
// Also the one JSON form documents take on disk, with a fixed key order so output is byte-deterministic.

export interface Document {
  id: string;
  text: string;
  url?: string;
  meta: Record<string, unknown>;
}

/** UTF-8 size of a document's text (what funnels count as "bytes"). */
export function textBytes(text: string): number {
  // Fast path for ASCII; otherwise the encoder's exact count.
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 127) {
      ascii = false;
      break;
    }
  }
  return ascii ? text.length : Buffer.byteLength(text, "utf8");
}

/** One JSON line (no newline) with keys in the order id, text, url, meta. */
export function documentToJson(doc: Document): string {
  const out: Record<string, unknown> = { id: doc.id, text: doc.text };
  if (doc.url !== undefined) out.url = doc.url;
  if (Object.keys(doc.meta).length > 0) out.meta = doc.meta;
  return JSON.stringify(out);
}

/**
 * A document from a parsed JSON record: `text` (or `textField`) is required; `id` and `url` are taken
 * when present; a `meta` object is kept, and every other field is moved into meta.
 * Returns an error message instead of a document when the record is unusable.
 */
export function documentFromRecord(
  rec: unknown,
  fallbackId: string,
  fields: { text?: string; id?: string; url?: string } = {},
): Document | string {
  if (rec === null || typeof rec !== "object" || Array.isArray(rec)) return "record is not a JSON object";
  const r = rec as Record<string, unknown>;
  const tf = fields.text ?? "text";
  const idf = fields.id ?? "id";
  const uf = fields.url ?? "url";
  const text = r[tf];
  if (typeof text !== "string") return `no string field '${tf}'`;
  const meta: Record<string, unknown> = {};
  if (r.meta && typeof r.meta === "object" && !Array.isArray(r.meta)) Object.assign(meta, r.meta);
  for (const [k, v] of Object.entries(r)) {
    if (k === tf || k === idf || k === uf || k === "meta") continue;
    meta[k] = v;
  }
  const rawId = r[idf];
  const id = typeof rawId === "string" ? rawId : typeof rawId === "number" ? String(rawId) : fallbackId;
  const url = typeof r[uf] === "string" ? (r[uf] as string) : undefined;
  const doc: Document = { id, text, meta };
  if (url !== undefined) doc.url = url;
  return doc;
}
