// minhashDedup: global near-duplicate removal in four stages with files between them, so each stage's
// tasks can run on different machines:
//   signatures (per shard task): sig-T.u32 (k values per document) and bands-T.u32 (h1, h2, index per
//     document, band-major);
//   buckets (one task per band): sorts that band's records from every shard, emits candidate pairs and
//     keeps those whose estimated Jaccard ≥ threshold (reading both signatures) → pairs-B.u32;
//   clusters (one task): connected components over all pairs; the first document (input order) of each
//     cluster is kept → clusters-T.u32 (index, cluster id, removed) per shard and clusters.json (sizes);
//   filter (per shard task, as the next stage reads the shard): drops the others. Members of a cluster
//     get meta.minhash_cluster (the kept document's global index); removed ones are written under
//     removed/minhashDedup/ with it, beside the kept output.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileSize, readU32, readU32Slice, writeJson, writeTyped } from "../files.js";
import {
  bandHashes,
  bucketPairs,
  isEmptySignature,
  jaccardEstimate,
  MinHasher,
  UnionFind,
} from "../minhash.js";
import { defineStep, type TaskContext } from "../pipeline/types.js";

interface P {
  shingleSize: number;
  bands: number;
  rows: number;
  threshold: number;
  hashSeed: number;
}

const pad = (n: number) => String(n).padStart(5, "0");
const sigFile = (d: string, t: number) => join(d, `sig-${pad(t)}.u32`);
const bandFile = (d: string, t: number) => join(d, `bands-${pad(t)}.u32`);
const pairFile = (d: string, b: number) => join(d, `pairs-${pad(b)}.u32`);
const clusterFile = (d: string, t: number) => join(d, `clusters-${pad(t)}.u32`);

function hasher(p: P): MinHasher {
  return new MinHasher({ shingleSize: p.shingleSize, bands: p.bands, rows: p.rows, seed: p.hashSeed });
}

function docCounts(p: P, ctx: TaskContext): number[] {
  const k = p.bands * p.rows;
  return Array.from({ length: ctx.tasks }, (_, t) => fileSize(sigFile(ctx.workDir, t)) / (4 * k));
}

export const minhashDedupStep = defineStep<P>({
  type: "minhashDedup",
  cli: "dedup",
  summary: "near-duplicate removal with MinHash + LSH (one document kept per cluster)",
  keepRemovedDefault: true,
  params: {
    shingleSize: { type: "integer", default: 5, min: 1, doc: "words per shingle" },
    bands: { type: "integer", default: 14, min: 1, doc: "LSH bands" },
    rows: { type: "integer", default: 8, min: 1, doc: "signature rows per band (hashes = bands × rows)" },
    threshold: {
      type: "number",
      default: 0.8,
      min: 0,
      max: 1,
      doc: "keep a candidate pair only if its estimated Jaccard similarity is at least this (0: every LSH candidate)",
    },
    hashSeed: { type: "integer", default: 1, doc: "seed of the hash functions" },
  },
  global: {
    collect(p, ctx) {
      const mh = hasher(p);
      const sigs: Uint32Array[] = [];
      return {
        add(doc) {
          sigs.push(mh.signature(doc.text));
        },
        async finish() {
          const n = sigs.length;
          const all = new Uint32Array(n * mh.k);
          const bands = new Uint32Array(n * p.bands * 3);
          const bh = new Uint32Array(p.bands * 2);
          sigs.forEach((s, i) => {
            all.set(s, i * mh.k);
            const empty = isEmptySignature(s);
            bandHashes(s, p.bands, p.rows, bh);
            for (let j = 0; j < p.bands; j++) {
              const o = (j * n + i) * 3;
              // Documents without words get a unique bucket (their index) so they never pair.
              bands[o] = empty ? 0xffffffff : bh[2 * j]!;
              bands[o + 1] = empty ? i : bh[2 * j + 1]!;
              bands[o + 2] = empty ? 0xffffffff : i;
            }
          });
          writeTyped(sigFile(ctx.workDir, ctx.task), all);
          writeTyped(bandFile(ctx.workDir, ctx.task), bands);
        },
      };
    },
    reduces: [
      {
        name: "buckets",
        tasks: (p) => p.bands,
        async run(p, ctx) {
          const b = ctx.reduceTask;
          const counts = docCounts(p, ctx);
          const offsets = counts.map((_, t) => counts.slice(0, t).reduce((a, c) => a + c, 0));
          const total = counts.reduce((a, c) => a + c, 0);
          const recs = new Uint32Array(total * 3);
          let o = 0;
          for (let t = 0; t < ctx.tasks; t++) {
            const n = counts[t]!;
            if (n === 0) continue;
            const slice = readU32Slice(bandFile(ctx.workDir, t), b * n * 3, n * 3);
            for (let i = 0; i < n; i++) {
              recs[o++] = slice[3 * i]!;
              recs[o++] = slice[3 * i + 1]!;
              recs[o++] = slice[3 * i + 2] === 0xffffffff ? 0xffffffff : offsets[t]! + slice[3 * i + 2]!;
            }
          }
          const k = p.bands * p.rows;
          const shardOf = (g: number) => {
            let t = 0;
            while (t + 1 < offsets.length && offsets[t + 1]! <= g) t++;
            return t;
          };
          const cache = new Map<number, Uint32Array>();
          const sig = (g: number) => {
            let s = cache.get(g);
            if (!s) {
              const t = shardOf(g);
              s = readU32Slice(sigFile(ctx.workDir, t), (g - offsets[t]!) * k, k);
              if (cache.size > 100000) cache.clear();
              cache.set(g, s);
            }
            return s;
          };
          const pairs: number[] = [];
          bucketPairs(recs, (x, y) => {
            if (x === 0xffffffff || y === 0xffffffff) return;
            if (p.threshold <= 0 || jaccardEstimate(sig(x), sig(y)) >= p.threshold) pairs.push(x, y);
          });
          writeTyped(pairFile(ctx.workDir, b), Uint32Array.from(pairs));
        },
      },
      {
        name: "clusters",
        tasks: () => 1,
        async run(p, ctx) {
          const counts = docCounts(p, ctx);
          const total = counts.reduce((a, c) => a + c, 0);
          const uf = new UnionFind(total);
          for (let b = 0; b < p.bands; b++) {
            const f = pairFile(ctx.workDir, b);
            if (!existsSync(f)) throw new Error(`minhashDedup: missing ${f} (buckets stage incomplete)`);
            const pr = readU32(f);
            for (let i = 0; i < pr.length; i += 2) uf.union(pr[i]!, pr[i + 1]!);
          }
          const size = new Map<number, number>();
          const root = new Int32Array(total);
          for (let g = 0; g < total; g++) {
            root[g] = uf.find(g);
            size.set(root[g]!, (size.get(root[g]!) ?? 0) + 1);
          }
          let g = 0;
          const histogram: Record<string, number> = {};
          for (const s of size.values()) if (s > 1) histogram[s] = (histogram[s] ?? 0) + 1;
          let removed = 0;
          for (let t = 0; t < ctx.tasks; t++) {
            const out: number[] = [];
            for (let i = 0; i < counts[t]!; i++, g++) {
              if (size.get(root[g]!)! < 2) continue;
              const isRemoved = root[g] !== g ? 1 : 0;
              removed += isRemoved;
              out.push(i, root[g]!, isRemoved);
            }
            writeTyped(clusterFile(ctx.workDir, t), Uint32Array.from(out));
          }
          writeJson(join(ctx.workDir, "clusters.json"), {
            documents: total,
            removed,
            clusterSizes: histogram,
          });
        },
      },
    ],
    apply(_p, ctx) {
      const recs = readU32(clusterFile(ctx.workDir, ctx.task));
      const info = new Map<number, [number, number]>();
      for (let i = 0; i < recs.length; i += 3) info.set(recs[i]!, [recs[i + 1]!, recs[i + 2]!]);
      let index = 0;
      return {
        name: "minhashDedup",
        process(doc) {
          const c = info.get(index++);
          if (!c) return doc;
          doc.meta.minhash_cluster = c[0];
          return c[1] === 1 ? { drop: "near duplicate" } : doc;
        },
      };
    },
  },
});
