// urlDedup: keep one document per normalised URL across the whole corpus — the most recent crawl
// (meta.date, any Date-parsable string; WARC readers set it), ties broken by input order. Documents without
// a URL pass. Collect writes (URL key, date, index) per shard; one reduce picks the winners and writes each
// shard's drop list; apply drops the losers.
import { join } from "node:path";
import type { Document } from "../document.js";
import { readF64, readU32, writeTyped } from "../files.js";
import { hashString } from "../hash.js";
import { defineStep } from "../pipeline/types.js";
import { normalizeUrl } from "../url.js";

interface P {
  ignoreScheme: boolean;
  ignoreWww: boolean;
}

const shardFile = (dir: string, t: number) => join(dir, `urls-${String(t).padStart(5, "0")}.f64`);
const dropFile = (dir: string, t: number) => join(dir, `drop-${String(t).padStart(5, "0")}.u32`);

function dateMs(doc: Document): number {
  const d = doc.meta.date;
  const t = typeof d === "string" || typeof d === "number" ? Date.parse(String(d)) : Number.NaN;
  return Number.isNaN(t) ? -1 : t;
}

export const urlDedupStep = defineStep<P>({
  type: "urlDedup",
  cli: "url-dedup",
  summary: "keep the most recent crawl of each normalised URL",
  params: {
    ignoreScheme: { type: "boolean", default: true, doc: "http:// and https:// are the same URL" },
    ignoreWww: { type: "boolean", default: true, doc: "www.host and host are the same site" },
  },
  global: {
    collect(p, ctx) {
      const recs: number[] = [];
      let index = 0;
      return {
        add(doc) {
          const norm = doc.url ? normalizeUrl(doc.url, p) : null;
          if (norm !== null) recs.push(hashString(norm, 1), hashString(norm, 2), dateMs(doc), index);
          index++;
        },
        async finish() {
          writeTyped(shardFile(ctx.workDir, ctx.task), Float64Array.from(recs));
        },
      };
    },
    reduces: [
      {
        name: "winners",
        tasks: () => 1,
        async run(_p, ctx) {
          // 64-bit URL key → [date, shard, index] of the best document so far.
          const best = new Map<string, [number, number, number]>();
          const drops: number[][] = Array.from({ length: ctx.tasks }, () => []);
          for (let t = 0; t < ctx.tasks; t++) {
            const r = readF64(shardFile(ctx.workDir, t));
            for (let i = 0; i < r.length; i += 4) {
              const key = `${r[i]}:${r[i + 1]}`;
              const rec: [number, number, number] = [r[i + 2]!, t, r[i + 3]!];
              const cur = best.get(key);
              if (cur === undefined) best.set(key, rec);
              else if (rec[0] > cur[0]) {
                // A newer crawl wins; on equal dates the earlier document stays.
                drops[cur[1]]!.push(cur[2]);
                best.set(key, rec);
              } else drops[t]!.push(rec[2]);
            }
          }
          for (let t = 0; t < ctx.tasks; t++)
            writeTyped(dropFile(ctx.workDir, t), Uint32Array.from(drops[t]!.sort((a, b) => a - b)));
        },
      },
    ],
    apply(_p, ctx) {
      const drop = new Set(readU32(dropFile(ctx.workDir, ctx.task)));
      let index = 0;
      return {
        name: "urlDedup",
        process(doc) {
          return drop.has(index++) ? { drop: "duplicate URL" } : doc;
        },
      };
    },
  },
});
