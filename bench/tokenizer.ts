// Tokenizer benchmark: encode MB/s on mixed multilingual text for herd and for the npm tiktoken package
// (Rust compiled to wasm) in the same process, decode MB/s, and the BPE trainer's time for an 8K
// vocabulary on 20 MB of text (from ../shared/data/corpora when present; HERD_BENCH_TRAIN=0 skips it).

import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Tiktoken } from "tiktoken";
import { knob } from "../src/core/knobs.js";
import { META_PATTERN } from "../src/tokenizer/pattern.js";
import { knownRanksPath, readRanks } from "../src/tokenizer/ranks.js";
import { Tokenizer } from "../src/tokenizer/tiktoken.js";
import { trainBpe } from "../src/tokenizer/train.js";
import { adversarial, sample } from "../test/tokenizer/corpus.js";

function mbps(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

/** Best of `reps` timings (ms) of f. */
function best(reps: number, f: () => void): number {
  let t = Number.POSITIVE_INFINITY;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    f();
    t = Math.min(t, performance.now() - t0);
  }
  return t;
}

export async function run(): Promise<void> {
  const text = [sample("multilingual"), sample("python"), sample("english")].join("\n");
  const bytes = Buffer.byteLength(text);
  console.log(
    `text: ${(bytes / 1e6).toFixed(2)} MB (41 languages, Python, English), node ${process.version}`,
  );

  const ranksText = readFileSync(knownRanksPath("llama3"), "utf8");
  let t0 = performance.now();
  const ranks = readRanks(knownRanksPath("llama3"));
  const first = new Tokenizer(ranks);
  const loadMs = performance.now() - t0;
  t0 = performance.now();
  const reference = new Tiktoken(ranksText, Object.fromEntries(first.specialTokens), META_PATTERN);
  const refLoadMs = performance.now() - t0;
  console.log(`load: herd ${loadMs.toFixed(0)} ms, tiktoken ${refLoadMs.toFixed(0)} ms`);

  // The first call in a fresh process: JavaScript not yet compiled, piece cache empty.
  t0 = performance.now();
  const ids = first.encode(text);
  const firstMs = performance.now() - t0;
  // Warm both up on other text, then time herd on unseen text (a new instance: empty caches) and again.
  const other = adversarial(77, 400_000);
  first.encode(other);
  reference.encode_ordinary(other);
  const refMs = best(5, () => reference.encode_ordinary(text));
  let coldMs = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 3; r++) {
    const fresh = new Tokenizer(ranks);
    t0 = performance.now();
    fresh.encode(text);
    coldMs = Math.min(coldMs, performance.now() - t0);
  }
  const warmMs = best(5, () => first.encode(text));
  const same = ids.length === reference.encode_ordinary(text).length;
  const ref = mbps(bytes, refMs);
  const row = (label: string, ms: number) =>
    console.log(
      `encode: ${label.padEnd(44)} ${mbps(bytes, ms).toFixed(1).padStart(6)} MB/s = ${(mbps(bytes, ms) / ref).toFixed(2)}× tiktoken`,
    );
  console.log(`encode: ${"tiktoken (npm, wasm)".padEnd(44)} ${ref.toFixed(1).padStart(6)} MB/s`);
  row("herd, unseen text (empty caches)", coldMs);
  row("herd, text seen before (piece cache warm)", warmMs);
  row("herd, first call in the process (JIT cold)", firstMs);
  console.log(`encode: ${ids.length} tokens; same count as tiktoken: ${same}`);

  const ids32 = Uint32Array.from(ids);
  const decBytesMs = best(5, () => first.decodeBytes(ids32));
  const decTextMs = best(5, () => first.decode(ids32));
  const refDecMs = best(5, () => reference.decode(ids32));
  console.log(
    `decode: herd bytes ${mbps(bytes, decBytesMs).toFixed(0)} MB/s, herd text ${mbps(bytes, decTextMs).toFixed(0)} MB/s, tiktoken bytes ${mbps(bytes, refDecMs).toFixed(0)} MB/s`,
  );
  reference.free();

  if (!knob("HERD_BENCH_TRAIN")) return;
  const corpora = join(process.cwd(), "..", "shared", "data", "corpora");
  const texts: string[] = [];
  let trainBytes = 0;
  const want = 20e6;
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (trainBytes >= want) return;
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(txt|py|rst)$/.test(name)) {
        const t = readFileSync(p, "utf8");
        texts.push(t);
        trainBytes += Buffer.byteLength(t);
      }
    }
  };
  let source: string;
  if (existsSync(corpora)) {
    for (const d of ["books-translated", "books-en", "code-python", "docs-python", "."])
      walk(join(corpora, d));
    source = "../shared/data/corpora";
  } else {
    while (trainBytes < want) {
      texts.push(text);
      trainBytes += bytes;
    }
    source = "the test fixtures, repeated (no ../shared)";
  }
  const t1 = performance.now();
  const res = trainBpe(texts, { vocabSize: 8192 });
  const trainS = (performance.now() - t1) / 1000;
  console.log(
    `train: ${res.tokens.length} ranks from ${(trainBytes / 1e6).toFixed(1)} MB (${source}) in ${trainS.toFixed(1)} s (${res.distinctPieces} distinct pieces; target ≤ 120 s)`,
  );
}
