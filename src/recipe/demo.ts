// The default pre-training `npm start` runs (minutes on 2 cores): the compact corpus shipped
// in assets/pretrain-corpus/ is split into documents, a BPE vocabulary is trained on it with the
// project's trainer (3,840 ranks + 256 specials = the small preset's 4,096), the documents are written
// as token shards (all sources for the main stages, the "high" sources for annealing), and a three-stage
// config for the `small` preset is produced. Prepared files are reused when present. After training,
// demoSamples continues a few prompts from the final weights. A recipe: it chains tokenizer, data, train
// and generate, and prints nothing itself (progress goes to `log`; the CLI renders the samples).
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { gunzipSync } from "node:zlib";
import { TokenShardWriter } from "../data/shards.js";
import { tiktokenCodec } from "../generate/codec.js";
import { generate } from "../generate/generate.js";
import { loadModel } from "../model/load.js";
import { packageRoot, readRanks } from "../tokenizer/ranks.js";
import { Tokenizer } from "../tokenizer/tiktoken.js";
import { trainBpe } from "../tokenizer/train.js";
import { writeTrainedTokenizer } from "../tokenizer/trainIO.js";
import { type PretrainConfig, resolveConfig } from "../train/config.js";

interface Source {
  file: string;
  mix: "high" | "web";
}

/** The corpus documents: paragraphs joined until a document holds at least `minChars`. */
export function corpusDocuments(minChars = 1500): { high: string[]; all: string[] } {
  const dir = join(packageRoot(), "assets", "pretrain-corpus");
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as Source[];
  const high: string[] = [];
  const all: string[] = [];
  for (const s of manifest) {
    const text = gunzipSync(readFileSync(join(dir, s.file)))
      .toString("utf8")
      .replace(/\r\n/g, "\n");
    let doc = "";
    for (const para of text.split(/\n\s*\n/)) {
      doc += `${para.trim()}\n\n`;
      if (doc.length >= minChars) {
        all.push(doc);
        if (s.mix === "high") high.push(doc);
        doc = "";
      }
    }
    if (doc.trim()) all.push(doc);
  }
  return { high, all };
}

/**
 * Prepare data/ in `runsDir/demo-data` (tokenizer, shards) and return the demo run's config. A relative
 * `runsDir` is taken from the current directory (the command line's rule); every path in the config is
 * absolute, so nothing is resolved twice.
 */
export function prepareDemo(
  runsDirArg: string,
  log: (line: string) => void = () => {},
): { config: PretrainConfig; tokenizer: Tokenizer } {
  const runsDir = resolve(runsDirArg);
  const dataDir = join(runsDir, "demo-data");
  mkdirSync(dataDir, { recursive: true });
  const tokPath = join(dataDir, "tokenizer.model");
  const mainShard = join(dataDir, "main.tok");
  const annealShard = join(dataDir, "anneal.tok");
  const docs = corpusDocuments();
  if (!existsSync(tokPath)) {
    log(`training a BPE vocabulary of 3,840 ranks on ${docs.all.length} documents`);
    const t0 = performance.now();
    const result = trainBpe(docs.all, { vocabSize: 3840, minFrequency: 2 });
    writeTrainedTokenizer(tokPath, result, { corpus: "assets/pretrain-corpus" });
    log(`  ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const tokenizer = new Tokenizer(readRanks(tokPath), { name: "demo" });
  for (const [path, list] of [
    [mainShard, docs.all],
    [annealShard, docs.high],
  ] as const) {
    if (existsSync(path)) continue;
    const w = new TokenShardWriter(path, tokenizer.vocabSize);
    for (const d of list) w.addDocument(tokenizer.encode(d, { bos: true, eos: true }));
    w.close();
    log(`${relative(process.cwd(), path)}: ${w.tokens} tokens in ${w.documents} documents`);
  }
  const config = resolveConfig(
    {
      name: "demo",
      runsDir,
      model: {
        preset: "small",
        overrides: {
          vocabSize: tokenizer.vocabSize,
          bosTokenId: tokenizer.bosId,
          eosTokenIds: [tokenizer.eosId],
        },
      },
      data: { shards: [mainShard] },
      seed: 1,
      schedule: { peakLR: 2e-3, warmupSteps: 20, floorLR: 2e-4 },
      stages: [
        // The spec §6.1 ramp scaled down: 64 steps of 8 × 64 tokens (the paper's first 252M tokens are
        // ~63 steps of 4M × 4,096), then 8 × 128 (its 8M × 8,192). 1.2M tokens: about 1.5 passes over
        // the main shard: minutes on 2 cores (bench/RESULTS.md has the measured durations).
        {
          name: "initial-128",
          kind: "initial",
          steps: 1200,
          seqLen: 64,
          batch: 8,
          ramp: [{ afterTokens: 64 * 8 * 64, batch: 8, seqLen: 128, microBatch: 8 }],
        },
        { name: "long-256", kind: "long-context", steps: 80, seqLen: 256, batch: 4 },
        { name: "annealing", kind: "annealing", steps: 40, seqLen: 256, batch: 4, shards: [annealShard] },
      ],
      checkpoint: { every: 100, keep: 2, annealEvery: 10 },
    },
    "demo config",
    runsDir,
  );
  return { config, tokenizer };
}

/**
 * The demo's prompts, continued from the weights in `dir` (60 tokens each, temperature 0.8, top-p 0.95);
 * `onSample` hears each as soon as it is generated.
 */
export async function demoSamples(
  dir: string,
  tokenizer: Tokenizer,
  onSample: (s: { prompt: string; text: string }, index: number) => void = () => {},
): Promise<{ prompt: string; text: string }[]> {
  const model = await loadModel(dir);
  const codec = tiktokenCodec(tokenizer);
  const out: { prompt: string; text: string }[] = [];
  try {
    for (const [i, prompt] of ["Alice was", "The whale", "ROMEO:"].entries()) {
      const ids = tokenizer.encode(prompt, { bos: true });
      const g = generate(model, ids, { maxNewTokens: 60, temperature: 0.8, topP: 0.95, seed: i, codec });
      out.push({ prompt, text: g.text });
      onSample(out.at(-1)!, i);
    }
  } finally {
    model.dispose();
  }
  return out;
}
