// PII and safety (the paper's §3.1.1 first filter, in small): find e-mail addresses, phone numbers, IP
// addresses (v4 and v6, validated by node:net) and payment-card numbers (13–19 digits passing the Luhn
// check), then mask them (<EMAIL>, <PHONE>, <IP>, <CARD>) or drop documents with more than `maxCount`.
// `domainBlocklist` drops documents from listed domains (and their subdomains).
// Deliberately not PII: dates, version numbers, prices, ISBNs, numbers without phone-like grouping, and
// digit runs failing Luhn; see the table of cases in test/data/pii.test.ts.
import { readFileSync } from "node:fs";
import { isIPv4, isIPv6 } from "node:net";
import { defineStep } from "./pipeline/types.js";
import { urlHost } from "./url.js";

export type PiiKind = "email" | "phone" | "ip" | "card";
export const PII_KINDS: readonly PiiKind[] = ["email", "phone", "ip", "card"];

export interface PiiMatch {
  kind: PiiKind;
  start: number;
  end: number;
}

const EMAIL =
  /(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])/g;
const IPV4 = /(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)/g;
const IPV6 = /(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])/g;
// +CC then groups; or (AAA) BBB-CCCC / AAA-BBB-CCCC / AAA.BBB.CCCC (North American); or 0AA(A) BBB(B) CCCC.
const PHONE =
  /(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]\d{2,4}){1,4}|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\d{3}[-.]\d{3}[-.]\d{4}|0\d{2,4}[ -]\d{3,4}[ -]\d{3,4})(?![\w-]|\.\d)/g;
const CARD = /(?<![\w.-])\d(?:[ -]?\d){12,18}(?![\w]|[.-]\d)/g;

export function luhn(digits: string): boolean {
  let sum = 0;
  let dbl = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return sum % 10 === 0;
}

function isoDate(s: string): boolean {
  return /^\d{4}[-./]\d{2}[-./]\d{2}$/.test(s);
}

/** PII spans in the text, non-overlapping, in order (cards first, then e-mails, IPs, phones). */
export function findPii(text: string, kinds: readonly PiiKind[] = PII_KINDS): PiiMatch[] {
  const found: PiiMatch[] = [];
  const taken = (s: number, e: number) => found.some((m) => s < m.end && e > m.start);
  const scan = (re: RegExp, kind: PiiKind, ok: (m: string, start: number) => boolean) => {
    if (!kinds.includes(kind)) return;
    for (const m of text.matchAll(re)) {
      const s = m.index!;
      const e = s + m[0].length;
      if (!taken(s, e) && ok(m[0], s)) found.push({ kind, start: s, end: e });
    }
  };
  scan(CARD, "card", (m, s) => {
    const d = m.replace(/[ -]/g, "");
    if (!/^[3-6]/.test(d) || !luhn(d)) return false;
    // Groups must look like a card (4-4-4-4, 4-6-5, or none), not an ISBN (978-…).
    if (/[ -]/.test(m) && !/^\d{4}([ -])\d{4,6}\1\d{4,5}(\1\d{1,4})?$/.test(m)) return false;
    return !/isbn[\s:-]*$/i.test(text.slice(Math.max(0, s - 8), s));
  });
  scan(EMAIL, "email", () => true);
  scan(IPV4, "ip", (m) => isIPv4(m) && !/^0\./.test(m));
  scan(
    IPV6,
    "ip",
    (m) =>
      isIPv6(m) &&
      m.replace(/[^:]/g, "").length >= 2 &&
      /[0-9a-f]{2,}/i.test(m) &&
      !/^\d+:\d+(:\d+)?$/.test(m),
  );
  scan(PHONE, "phone", (m, s) => {
    const digits = m.replace(/\D/g, "");
    if (digits.length < 9 || digits.length > 15 || isoDate(m)) return false;
    return !/isbn[\s:-]*$/i.test(text.slice(Math.max(0, s - 8), s));
  });
  return found.sort((a, b) => a.start - b.start);
}

export const PII_MASKS: Record<PiiKind, string> = {
  email: "<EMAIL>",
  phone: "<PHONE>",
  ip: "<IP>",
  card: "<CARD>",
};

/** The text with each PII span replaced by its mask. */
export function maskPii(
  text: string,
  matches: PiiMatch[],
  masks: Record<string, string> = PII_MASKS,
): string {
  let out = "";
  let at = 0;
  for (const m of matches) {
    out += text.slice(at, m.start) + (masks[m.kind] ?? PII_MASKS[m.kind]);
    at = m.end;
  }
  return out + text.slice(at);
}

export const piiStep = defineStep<{
  mode: string;
  kinds: string[];
  maxCount: number;
  masks: Record<string, string>;
}>({
  type: "pii",
  cli: "pii",
  summary: "mask or drop e-mails, phone numbers, IP addresses and card numbers",
  params: {
    mode: {
      type: "string",
      default: "mask",
      choices: ["mask", "drop"],
      doc: "mask the spans, or drop documents with more than maxCount",
    },
    kinds: { type: "strings", default: [...PII_KINDS], doc: "which kinds: email, phone, ip, card" },
    maxCount: {
      type: "integer",
      default: 0,
      min: 0,
      doc: "drop mode: most PII spans a kept document may have",
    },
    masks: { type: "object", default: PII_MASKS, doc: "kind → replacement text" },
  },
  block: (p) => ({
    name: "pii",
    process(doc) {
      const found = findPii(doc.text, p.kinds as PiiKind[]);
      if (found.length === 0) return doc;
      if (p.mode === "drop") return found.length > p.maxCount ? { drop: "PII" } : doc;
      const counts: Record<string, number> = {};
      for (const m of found) counts[m.kind] = (counts[m.kind] ?? 0) + 1;
      return { ...doc, text: maskPii(doc.text, found, p.masks), meta: { ...doc.meta, pii_masked: counts } };
    },
  }),
});

/** Domains from a list: one per line, "#" comments, blank lines ignored, lower-cased, "www." removed. */
export function parseDomainList(text: string): string[] {
  return text
    .split("\n")
    .map((l) =>
      l
        .replace(/#.*/, "")
        .trim()
        .toLowerCase()
        .replace(/^www\./, ""),
    )
    .filter((l) => l.length > 0);
}

export const domainBlocklistStep = defineStep<{ domains: string[]; domainsFile: string }>({
  type: "domainBlocklist",
  cli: "blocklist",
  summary: "drop documents whose URL is on a blocked domain (or a subdomain of one)",
  params: {
    domains: { type: "strings", default: [], doc: "blocked domains" },
    domainsFile: { type: "string", default: "", doc: "file of blocked domains, one per line (# comments)" },
  },
  block: (p) => {
    const list = [
      ...p.domains.map((d) => d.toLowerCase().replace(/^www\./, "")),
      ...(p.domainsFile ? parseDomainList(readFileSync(p.domainsFile, "utf8")) : []),
    ];
    const exact = new Set(list);
    return {
      name: "domainBlocklist",
      process(doc) {
        const host = doc.url ? urlHost(doc.url) : null;
        if (!host) return doc;
        if (exact.has(host)) return { drop: "blocked domain" };
        // Walk up the parents: a.b.example.com → b.example.com → example.com.
        let h = host;
        for (let i = h.indexOf("."); i >= 0; i = h.indexOf(".")) {
          h = h.slice(i + 1);
          if (exact.has(h)) return { drop: "blocked domain" };
        }
        return doc;
      },
    };
  },
});
