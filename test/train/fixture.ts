// Shared fixtures of the pre-training tests (and of eval's tests over training runs): a real corpus (the
// Carroll excerpt in test/fixtures) as byte-level token shards (paragraphs are documents), a shard of
// marked documents, a tiny model config, temporary folders.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TokenShardWriter } from "../../src/data/shards.js";
import { type PretrainConfig, resolveConfig } from "../../src/train/config.js";
import { repoPath } from "../helpers.js";

const made: string[] = [];
process.on("exit", () => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "herd-train-"));
  made.push(d);
  return d;
}

/** The tiny test model: 2 layers, width 32, byte vocabulary (256). */
export const TINY = {
  hiddenSize: 32,
  intermediateSize: 64,
  numHiddenLayers: 2,
  numAttentionHeads: 2,
  numKeyValueHeads: 1,
  headDim: 16,
  vocabSize: 256,
  maxPositionEmbeddings: 256,
};

/** Paragraphs of the Carroll excerpt as UTF-8 byte documents in one shard; returns its path. */
export function corpusShard(dir: string, maxBytes = 60000): string {
  const text = readFileSync(repoPath("test", "fixtures", "data", "books", "carroll-excerpt.txt"), "utf8");
  const path = join(dir, "carroll.tok");
  const w = new TokenShardWriter(path, 256);
  let bytes = 0;
  for (const para of text.split(/\n\s*\n/)) {
    const b = Buffer.from(`${para.trim()}\n`, "utf8");
    if (b.length < 2) continue;
    w.addDocument(b);
    bytes += b.length;
    if (bytes >= maxBytes) break;
  }
  w.close();
  return path;
}

/** A resolved config over `shard` with one initial stage (overrides merged shallowly). */
export function tinyConfig(dir: string, shard: string, raw: Record<string, unknown> = {}): PretrainConfig {
  return resolveConfig(
    {
      name: "t",
      runsDir: join(dir, "runs"),
      model: { preset: "tiny", overrides: TINY },
      data: { shards: [shard] },
      schedule: { peakLR: 1e-2, warmupSteps: 2, floorLR: 1e-3 },
      stages: [{ kind: "initial", steps: 10, seqLen: 32, batch: 4 }],
      checkpoint: { every: 5, keep: 2 },
      ...raw,
    },
    "test-config",
    dir,
  );
}

/** 20 documents of 50 tokens: document d holds ids 10·(d mod 20)..; the last ones are easy to spot. */
export function markedShard(dir: string): string {
  const p = join(dir, "marked.tok");
  const w = new TokenShardWriter(p, 256);
  for (let d = 0; d < 20; d++) w.addDocument(Array.from({ length: 50 }, (_, i) => d * 10 + (i % 10)));
  w.close();
  return p;
}
