// What the post-training commands share around their trainers: the chat format of a model directory
// (its tokenizer.model, or --tokenizer, or the shipped Llama 3 tokenizer for a 128,256 vocabulary), and
// the run's final/ folder: an HF checkpoint of the trained weights (f32) with the source model's tokenizer
// and generation files copied beside it, so `herd chat --model RUN/final` works on it; and the record of
// the input lines a run skipped (skipped.jsonl).

import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import { writeHFCheckpoint } from "../model/checkpoint/hf.js";
import { toHFConfig } from "../model/config.js";
import type { Llama } from "../model/llama.js";
import { copySideFiles } from "../model/sideFiles.js";
import type { Tensor } from "../tensor/tensor.js";
import { ChatFormat } from "../tokenizer/chat.js";
import { readRanks } from "../tokenizer/ranks.js";
import { Tokenizer } from "../tokenizer/tiktoken.js";
import type { ToolPromptFormat } from "../tokenizer/tools.js";
import type { Skip } from "./data.js";

/** The chat format (tool calls written in `toolPromptFormat`) for a model directory, or null when it has no tokenizer with the Llama 3 special tokens. */
export function chatFormatFor(
  dir: string,
  vocabSize: number,
  path?: string,
  toolPromptFormat: ToolPromptFormat = "json",
): ChatFormat | null {
  const file = path ?? (existsSync(join(dir, "tokenizer.model")) ? join(dir, "tokenizer.model") : null);
  let tok: Tokenizer | null = null;
  if (file) tok = new Tokenizer(readRanks(file), { name: file });
  else if (vocabSize === 128256) tok = Tokenizer.llama3();
  if (!tok) return null;
  if (tok.vocabSize > vocabSize)
    throw new Error(`${file}: a tokenizer of ${tok.vocabSize} ids for a model of ${vocabSize}`);
  return new ChatFormat(tok, { toolPromptFormat });
}

/**
 * Write runDir/final/: the model's weights (plus `extra` tensors, e.g. the reward head, and `config`
 * fields over the model's HF config) and the source directory's tokenizer files.
 */
export async function writeFinal(
  runDir: string,
  model: Llama,
  sourceDir: string,
  extra: { tensors?: Map<string, Tensor>; config?: Record<string, unknown> } = {},
): Promise<string> {
  const dir = join(runDir, "final");
  const tensors = new Map(model.weights);
  for (const [k, t] of extra.tensors ?? []) tensors.set(k, t);
  await writeHFCheckpoint(dir, { ...toHFConfig(model.config, "f32"), ...extra.config }, tensors);
  copySideFiles(sourceDir, dir);
  return dir;
}

/** Record the skipped lines in runDir/skipped.jsonl (one {file, line, reason} a line), atomically. */
export function writeSkips(runDir: string, skipped: readonly Skip[]): void {
  mkdirSync(runDir, { recursive: true });
  writeFileAtomic(join(runDir, "skipped.jsonl"), skipped.map((s) => `${JSON.stringify(s)}\n`).join(""));
}
