// `herd export --format gguf [--type f32|f16|bf16|q8_0|q4_0|q4_k_m|q5_k_m] MODEL OUT.gguf`: write a herd model (an HF,
// Meta or quantised checkpoint directory, or a GGUF file) as a GGUF file that llama.cpp, ollama and LM
// Studio load (layout: src/model/checkpoint/ggufLlama.ts). The vocabulary goes in too: the tokenizer
// beside the model (tokenizer.model ranks, herd's own trained BPE included), else Llama 3's for a
// 128,256-id model, else byte placeholders (such a model is driven by ids). The file is written
// atomically; progress is one line per tensor with rate and ETA on stderr. q4_k_m / q5_k_m are
// llama.cpp's mixes (Q4_K or Q5_K, Q6_K for the output and some attn_v/ffn_down layers), quantised as
// llama-quantize does without an importance matrix: the same bytes.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { commandHelp, type Schema } from "../core/schema.js";
import { GGUFFile } from "../model/checkpoint/gguf.js";
import {
  GGUF_EXPORT_TYPES,
  type GGUFExportSource,
  ggufConfig,
  readGGUFWeights,
  writeGGUFModel,
} from "../model/checkpoint/ggufLlama.js";
import { tokenizerFromGGUF } from "../model/checkpoint/ggufVocab.js";
import { isGGUFPath, loadModel } from "../model/load.js";
import { QuantTensor } from "../tensor/quant.js";
import type { Tensor } from "../tensor/tensor.js";
import { Tokenizer } from "../tokenizer/index.js";
import { parseCommand } from "./command.js";
import { formatDuration } from "./duration.js";
import { UsageError } from "./modelArgs.js";

export const OPTIONS = {
  format: { type: "enum", choices: ["gguf"], default: "gguf", doc: "output format" },
  type: {
    type: "enum",
    choices: GGUF_EXPORT_TYPES,
    default: null,
    doc: "weight type of the matrices: f32, f16, bf16, q8_0 or q4_0 for every matrix, or llama.cpp's q4_k_m / q5_k_m mix (default: bf16 for a bf16/f32 model, the model's own for a q8_0/q4_0 one); norms stay f32",
  },
  force: { type: "boolean", default: false, doc: "replace OUT if it exists" },
  help: { type: "boolean", short: "h", default: false, doc: "this help" },
} as const satisfies Schema;

export const HELP = commandHelp(
  "usage: herd export [--format gguf] [--type f32|f16|bf16|q8_0|q4_0|q4_k_m|q5_k_m] MODEL OUT.gguf",
  OPTIONS,
);

/** The tokenizer to store for the model directory at `path` (see the header), or null. */
function tokenizerFor(path: string, vocabSize: number): Tokenizer | null {
  const ranks = join(path, "tokenizer.model");
  if (existsSync(ranks)) return Tokenizer.fromFile(ranks);
  if (vocabSize === 128256) return Tokenizer.llama3();
  return null;
}

/** The model at `src` as an export source, and how to free it. A GGUF file's header is parsed once. */
async function sourceOf(src: string): Promise<{ source: GGUFExportSource; free: () => void }> {
  if (isGGUFPath(src)) {
    const f = GGUFFile.open(src);
    try {
      const config = ggufConfig(f);
      const weights = readGGUFWeights(f, config, "keep");
      const tokenizer = tokenizerFromGGUF(f);
      return {
        source: { config, weights, tokenizer, name: src },
        free: () => {
          for (const t of weights.values()) t.dispose();
        },
      };
    } finally {
      f.close();
    }
  }
  const model = await loadModel(src, { dtype: "keep" });
  const weights = new Map<string, Tensor | QuantTensor>([...model.weights, ...model.quantized]);
  return {
    source: {
      config: model.config,
      weights,
      tokenizer: tokenizerFor(src, model.config.vocabSize),
      name: src,
    },
    free: () => model.dispose(),
  };
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(OPTIONS, HELP, argv, { positionals: true });
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 2) throw new UsageError("give the model and the output file: MODEL OUT.gguf");
  const [src, out] = positionals as [string, string];
  if (!isGGUFPath(out)) throw new UsageError(`${out}: the output file must end in .gguf`);
  if (existsSync(out) && !values.force) throw new UsageError(`${out}: exists; pass --force to replace it`);
  if (!existsSync(src)) throw new Error(`${src}: no such model directory or file`);
  const { source, free } = await sourceOf(src);
  try {
    const held = [...source.weights.values()].find((t) => t instanceof QuantTensor);
    const heldFormat = held instanceof QuantTensor ? held.format : null;
    // A K-quant model (read from a GGUF file) exports as bf16 unless --type says otherwise: its blocks
    // are not re-quantised behind the user's back.
    const type =
      values.type ?? (heldFormat === "q8_0" || heldFormat === "q4_0" ? heldFormat : null) ?? "bf16";
    const tokenizer = source.tokenizer;
    const t0 = performance.now();
    writeGGUFModel(out, source, type, (name, i, n) => {
      const s = (performance.now() - t0) / 1000;
      const eta = ((n - i - 1) * s) / (i + 1);
      process.stderr.write(
        `[${i + 1}/${n}] ${name} ${((i + 1) / Math.max(s, 1e-3)).toFixed(1)} tensors/s ETA ${formatDuration(eta)}\n`,
      );
    });
    process.stdout.write(
      `${out}: ${type} GGUF, ${tokenizer ? `vocabulary ${tokenizer.name}` : "placeholder vocabulary"}, in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
    );
  } finally {
    free();
  }
  return 0;
}
