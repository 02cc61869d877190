// Data pipeline benchmark: MinHash signature MB/s on one core, and the whole pipeline's MB/s (URL, line and
// MinHash dedup, every filter, language id, PII, tagging, mixing, Llama 3 tokenisation) on a generated
// corpus with 1 and 2 workers. HERD_BENCH_DATA_MB sets the corpus size (default 20; the figure
// is for 200). The corpus: random-vocabulary English-like documents with boilerplate lines, 10% near
// duplicates and 5% exact duplicates, in 8 JSONL shards.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { knob } from "../src/core/knobs.js";
import { documentToJson } from "../src/data/document.js";
import { MINHASH_DEFAULTS, MinHasher } from "../src/data/minhash.js";
import { validatePipeline } from "../src/data/pipeline/config.js";
import { runLocal } from "../src/data/pipeline/run.js";
import { vocabulary } from "../test/data/corpus.js";
import { rng } from "../test/helpers.js";

const STEPS = [
  { type: "urlDedup" },
  { type: "langId" },
  { type: "lineDedup" },
  { type: "minhashDedup" },
  { type: "gopherRepetition" },
  { type: "gopherQuality" },
  { type: "dirtyWords" },
  { type: "klDivergence" },
  { type: "pii" },
  { type: "domainTag" },
  { type: "mix" },
  { type: "tokenize" },
];

const STOP = ["the", "of", "and", "to", "in", "that", "with", "have", "be", "for", "on", "as", "is", "was"];

export function makeCorpus(dir: string, mb: number): { texts: string[]; bytes: number } {
  const r = rng(1);
  const vocab = vocabulary(30000, 2);
  const boiler = [
    "Home | About | Contact",
    "Accept cookies to continue",
    "Share this article",
    "Subscribe to our newsletter",
  ];
  const texts: string[] = [];
  let bytes = 0;
  const sentence = () => {
    const n = 8 + Math.floor(r() * 14);
    const w = Array.from({ length: n }, () =>
      r() < 0.35 ? STOP[Math.floor(r() * STOP.length)]! : vocab[Math.floor(r() * vocab.length)]!,
    );
    return `${w.join(" ")}.`;
  };
  while (bytes < mb * 1e6) {
    let text: string;
    const u = r();
    if (u < 0.05 && texts.length > 0) text = texts[Math.floor(r() * texts.length)]!;
    else if (u < 0.15 && texts.length > 0) {
      const base = texts[Math.floor(r() * texts.length)]!.split(" ");
      text = base.map((w) => (r() < 0.02 ? vocab[Math.floor(r() * vocab.length)]! : w)).join(" ");
    } else {
      const paras = 2 + Math.floor(r() * 6);
      const ps = Array.from({ length: paras }, () =>
        Array.from({ length: 2 + Math.floor(r() * 5) }, sentence).join(" "),
      );
      text = [boiler[Math.floor(r() * boiler.length)]!, ...ps].join("\n\n");
    }
    texts.push(text);
    bytes += Buffer.byteLength(text);
  }
  const shards = 8;
  for (let s = 0; s < shards; s++) {
    const lines: string[] = [];
    for (let i = s; i < texts.length; i += shards)
      lines.push(
        documentToJson({
          id: `d${i}`,
          text: texts[i]!,
          url: `https://site${i % 5000}.example/p/${i}`,
          meta: {},
        }),
      );
    writeFileSync(join(dir, `shard-${s}.jsonl`), `${lines.join("\n")}\n`);
  }
  return { texts, bytes };
}

export async function run(): Promise<void> {
  const mb = knob("HERD_BENCH_DATA_MB");
  const dir = mkdtempSync(join(tmpdir(), "herd-bench-data-"));
  try {
    const t0 = performance.now();
    const { texts, bytes } = makeCorpus(dir, mb);
    console.log(
      `corpus: ${(bytes / 1e6).toFixed(1)} MB, ${texts.length} documents, 8 shards (generated in ${((performance.now() - t0) / 1000).toFixed(1)} s); ${cpus().length} cores: ${cpus()[0]?.model ?? "?"}`,
    );

    const mh = new MinHasher(MINHASH_DEFAULTS);
    const sig = new Uint32Array(mh.k);
    let best = Number.POSITIVE_INFINITY;
    for (let rep = 0; rep < 3; rep++) {
      const s = performance.now();
      for (const t of texts) mh.signature(t, sig);
      best = Math.min(best, (performance.now() - s) / 1000);
    }
    console.log(
      `minhash signatures (${MINHASH_DEFAULTS.bands}x${MINHASH_DEFAULTS.rows} hashes, 5-word shingles): ${(bytes / 1e6 / best).toFixed(1)} MB/s on one core`,
    );

    const times: number[] = [];
    for (const workers of [1, 2]) {
      const out = join(dir, `run-${workers}`);
      const config = validatePipeline(
        { name: "bench", input: { paths: [dir] }, output: out, workers, steps: STEPS },
        dir,
      );
      config.input.paths = Array.from({ length: 8 }, (_, s) => join(dir, `shard-${s}.jsonl`));
      const s = performance.now();
      const report = await runLocal(config);
      const secs = (performance.now() - s) / 1000;
      times.push(secs);
      const last = report.funnel[report.funnel.length - 1]!;
      console.log(
        `whole pipeline (${STEPS.length} steps), ${workers} worker(s): ${secs.toFixed(1)} s, ${(bytes / 1e6 / secs).toFixed(2)} MB/s, ${(bytes / 1e6 / secs / workers).toFixed(2)} MB/s per core; ${last.docsOut} of ${texts.length} documents out`,
      );
      rmSync(out, { recursive: true, force: true });
    }
    console.log(`speed-up 1 → 2 workers: ${(times[0]! / times[1]!).toFixed(2)}x`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
