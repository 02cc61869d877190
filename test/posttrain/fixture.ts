// Shared fixtures of the post-training tests: a byte-level tokenizer with the Llama 3 special tokens
// (256 byte ranks + 256 specials = a vocabulary of 512), a tiny model over it, JSONL files in a temp folder.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type LlamaConfig, validateConfig } from "../../src/model/config.js";
import { Llama } from "../../src/model/llama.js";
import { preset } from "../../src/model/presets.js";
import { initWeights } from "../../src/model/weights.js";
import { ChatFormat } from "../../src/tokenizer/chat.js";
import { Tokenizer } from "../../src/tokenizer/tiktoken.js";

const made: string[] = [];
process.on("exit", () => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "herd-post-"));
  made.push(d);
  return d;
}

/** A byte-level tokenizer (each byte its own id) with Llama 3's 256 special tokens after the bytes. */
export function byteTokenizer(): Tokenizer {
  const ranks = new Map<string, number>();
  for (let b = 0; b < 256; b++) ranks.set(String.fromCharCode(b), b);
  return new Tokenizer({ ranks, size: 256 }, { name: "bytes" });
}

export const byteChat = () => new ChatFormat(byteTokenizer());

export const TINY_CONFIG: LlamaConfig = validateConfig(
  {
    ...preset("tiny"),
    hiddenSize: 32,
    intermediateSize: 64,
    numHiddenLayers: 2,
    numAttentionHeads: 2,
    numKeyValueHeads: 1,
    headDim: 16,
    vocabSize: 512,
    maxPositionEmbeddings: 256,
  },
  "test",
);

export function tinyModel(seed = 1): Llama {
  return new Llama(TINY_CONFIG, initWeights(TINY_CONFIG, { seed }), "init");
}

/** Write `lines` (objects, or raw strings as given) as a JSONL file; returns its path. */
export function jsonl(dir: string, name: string, lines: readonly unknown[]): string {
  const p = join(dir, name);
  writeFileSync(p, `${lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n")}\n`);
  return p;
}
