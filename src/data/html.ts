// HTML to plain text for web pages (the paper's §3.1.1 "text extraction", in small): html-to-text walks
// the DOM; we pick the main content (<article>, else <main>, else <body>), skip boilerplate elements
// (navigation, headers, footers, asides, forms, scripts, styles), keep image alt text (math often lives
// there) and TeX in MathJax script tags, keep <pre> code as it is, and emit no markdown markers
// (no list bullets, no link targets, headings not upper-cased).
import { compile } from "html-to-text";

const SKIP = [
  "script",
  "style",
  "noscript",
  "template",
  "nav",
  "header",
  "footer",
  "aside",
  "form",
  "button",
  "select",
  "iframe",
  "svg",
  "canvas",
  "video",
  "audio",
  "[role=navigation]",
  "[role=banner]",
  "[role=contentinfo]",
  "[aria-hidden=true]",
];

const convert = compile({
  wordwrap: false,
  preserveNewlines: false,
  decodeEntities: true,
  baseElements: { selectors: ["article", "main", "body"], orderBy: "selectors", returnDomByDefault: true },
  limits: { maxBaseElements: 1 },
  formatters: {
    altText(elem, _walk, builder) {
      const alt = (elem as { attribs?: Record<string, string> }).attribs?.alt;
      if (alt?.trim()) builder.addInline(alt.trim());
    },
    mathScript(elem, walk, builder) {
      builder.addInline(" ");
      walk((elem as unknown as { children: Parameters<typeof walk>[0] }).children ?? [], builder);
      builder.addInline(" ");
    },
  },
  selectors: [
    ...SKIP.map((selector) => ({ selector, format: "skip" })),
    { selector: 'script[type^="math/tex"]', format: "mathScript" },
    { selector: "img", format: "altText" },
    { selector: "a", options: { ignoreHref: true } },
    { selector: "ul", options: { itemPrefix: "" } },
    { selector: "ol", options: { itemPrefix: "" } },
    ...["h1", "h2", "h3", "h4", "h5", "h6"].map((selector) => ({ selector, options: { uppercase: false } })),
    { selector: "table", format: "dataTable", options: { uppercaseHeaderCells: false } },
    { selector: "hr", format: "skip" },
  ],
});

/** Plain text of an HTML page: main content, no boilerplate elements, no markdown, trimmed lines. */
export function htmlToText(html: string): string {
  const text = convert(html);
  return text
    .split("\n")
    .map((l) => l.replace(/[ \t\u00a0]+$/g, ""))
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

/** The charset named in a Content-Type header or in the page's own <meta> tags; null if none. */
export function detectCharset(contentType: string | null | undefined, head: Uint8Array): string | null {
  const fromHeader = contentType?.match(/charset\s*=\s*["']?([\w.:-]+)/i)?.[1];
  if (fromHeader) return fromHeader.toLowerCase();
  const s = Buffer.from(head.subarray(0, 4096)).toString("latin1");
  const m = s.match(/<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)/i);
  return m ? m[1]!.toLowerCase() : null;
}

/** Decodes page bytes by charset; unknown charsets fall back to UTF-8 (with U+FFFD for bad bytes). */
export function decodeHtml(bytes: Uint8Array, charset: string | null): string {
  if (charset) {
    try {
      return new TextDecoder(charset).decode(bytes);
    } catch {
      // unknown label
    }
  }
  return new TextDecoder("utf-8").decode(bytes);
}
