// lineDedup (ccNet-style, the paper's §3.1.1): remove every line that occurs more than `maxOccurrences`
// times (default 6) within a bucket of `bucketDocs` consecutive documents (default 30M; a small corpus is
// one bucket). Lines are compared after normalisation (trimmed, lower-cased, runs of spaces collapsed,
// digits → 0); blank lines are never counted or removed. A document left with no non-blank line is
// dropped. Documents of `exemptDomains` (code) are left alone. Collect writes each document's 53-bit line keys; one reduce counts them per bucket and writes
// the keys to remove; apply removes those lines.
import { join } from "node:path";
import type { Document } from "../document.js";
import { readF64, readJson, readU32, writeJson, writeTyped } from "../files.js";
import { key53 } from "../hash.js";
import { defineStep } from "../pipeline/types.js";

interface P {
  maxOccurrences: number;
  bucketDocs: number;
  exemptDomains: string[];
}

const exempt = (doc: Document, p: P) =>
  typeof doc.meta.domain === "string" && p.exemptDomains.includes(doc.meta.domain);

const pad = (n: number) => String(n).padStart(5, "0");
const keysFile = (d: string, t: number) => join(d, `lines-${pad(t)}.f64`);
const offsFile = (d: string, t: number) => join(d, `lines-${pad(t)}.u32`);
const dupFile = (d: string, b: number) => join(d, `dup-${pad(b)}.f64`);

export function normalizeLine(line: string): string {
  return line.trim().toLowerCase().replace(/\s+/g, " ").replace(/\d/g, "0");
}

function lineKeys(doc: Document): number[] {
  const out: number[] = [];
  for (const line of doc.text.split("\n")) {
    const n = normalizeLine(line);
    if (n !== "") out.push(key53(n));
  }
  return out;
}

export const lineDedupStep = defineStep<P>({
  type: "lineDedup",
  cli: "line-dedup",
  summary: "remove lines occurring more than N times per bucket of documents",
  params: {
    maxOccurrences: {
      type: "integer",
      default: 6,
      min: 1,
      doc: "a line seen more often than this in a bucket is removed everywhere in it",
    },
    bucketDocs: {
      type: "integer",
      default: 30_000_000,
      min: 1,
      doc: "documents per bucket (consecutive, in input order)",
    },
    exemptDomains: {
      type: "strings",
      default: ["code"],
      doc: "meta.domain classes neither counted nor changed (code shares lines by nature)",
    },
  },
  global: {
    collect(p, ctx) {
      const keys: number[] = [];
      const offs: number[] = [0];
      return {
        add(doc) {
          if (!exempt(doc, p)) for (const k of lineKeys(doc)) keys.push(k);
          offs.push(keys.length);
        },
        async finish() {
          writeTyped(keysFile(ctx.workDir, ctx.task), Float64Array.from(keys));
          writeTyped(offsFile(ctx.workDir, ctx.task), Uint32Array.from(offs));
        },
      };
    },
    reduces: [
      {
        name: "count",
        tasks: () => 1,
        async run(p, ctx) {
          const offs = Array.from({ length: ctx.tasks }, (_, t) => readU32(offsFile(ctx.workDir, t)));
          const docStart: number[] = [];
          let total = 0;
          for (const o of offs) {
            docStart.push(total);
            total += o.length - 1;
          }
          const buckets = Math.max(1, Math.ceil(total / p.bucketDocs));
          const removedLines: number[] = [];
          for (let b = 0; b < buckets; b++) {
            const lo = b * p.bucketDocs;
            const hi = Math.min(total, lo + p.bucketDocs);
            const count = new Map<number, number>();
            for (let t = 0; t < ctx.tasks; t++) {
              const n = offs[t]!.length - 1;
              const from = Math.max(lo, docStart[t]!) - docStart[t]!;
              const to = Math.min(hi, docStart[t]! + n) - docStart[t]!;
              if (to <= from) continue;
              const keys = readF64(keysFile(ctx.workDir, t));
              for (let i = offs[t]![from]!; i < offs[t]![to]!; i++)
                count.set(keys[i]!, (count.get(keys[i]!) ?? 0) + 1);
            }
            const dup: number[] = [];
            let lines = 0;
            for (const [k, c] of count)
              if (c > p.maxOccurrences) {
                dup.push(k);
                lines += c;
              }
            removedLines.push(lines);
            writeTyped(dupFile(ctx.workDir, b), Float64Array.from(dup.sort((x, y) => x - y)));
          }
          writeJson(join(ctx.workDir, "buckets.json"), { documents: total, docStart, buckets, removedLines });
        },
      },
    ],
    apply(p, ctx) {
      const info = readJson<{ docStart: number[] }>(join(ctx.workDir, "buckets.json"));
      let global = info.docStart[ctx.task]!;
      let bucket = -1;
      let dup = new Set<number>();
      return {
        name: "lineDedup",
        process(doc) {
          const b = Math.floor(global++ / p.bucketDocs);
          if (b !== bucket) {
            bucket = b;
            dup = new Set(readF64(dupFile(ctx.workDir, b)));
          }
          if (exempt(doc, p)) return doc;
          const lines = doc.text.split("\n");
          let kept = 0;
          let removed = 0;
          const out: string[] = [];
          for (const line of lines) {
            const n = normalizeLine(line);
            if (n !== "" && dup.has(key53(n))) {
              removed++;
              continue;
            }
            if (n !== "") kept++;
            out.push(line);
          }
          if (removed === 0) return doc;
          if (kept === 0) return { drop: "all lines duplicated" };
          return {
            ...doc,
            text: out
              .join("\n")
              .replace(/\n{3,}/g, "\n\n")
              .trim(),
          };
        },
      };
    },
  },
});
