// tokenize: the last step of a pre-training pipeline. Each document is encoded (the Llama 3 tokenizer by
// default, or a tiktoken-format ranks file), wrapped in <|begin_of_text|> / <|end_of_text|> if asked,
// and appended to the task's token shard <run>/tokens/shard-T.tok (format in shards.ts); the document
// passes on with meta.tokens set, so the JSONL output and the shards stay in step.
import { join } from "node:path";
import { Tokenizer } from "../tokenizer/tiktoken.js";
import { defineStep } from "./pipeline/types.js";
import { TokenShardWriter } from "./shards.js";

export interface TokenizeParams {
  tokenizerFile: string;
  tokenizerSha256: string;
  bos: boolean;
  eos: boolean;
}

// One tokenizer per thread, ranks file and pinned hash: loading the ranks costs more than a small task.
const tokenizers = new Map<string, Tokenizer>();
function tokenizer(file: string, sha256: string): Tokenizer {
  const key = `${file}\0${sha256}`;
  let t = tokenizers.get(key);
  if (!t) {
    const opts = sha256 ? { sha256 } : {};
    t = file ? Tokenizer.fromFile(file, opts) : Tokenizer.llama3(opts);
    tokenizers.set(key, t);
  }
  return t;
}

export const tokenizeStep = defineStep<TokenizeParams>({
  type: "tokenize",
  cli: "tokenize",
  summary: "encode documents into packed uint32 token shards with a document index",
  params: {
    tokenizerFile: {
      type: "string",
      default: "",
      doc: "tiktoken-format ranks file (empty: Meta's Llama 3 tokenizer, shipped)",
    },
    tokenizerSha256: {
      type: "string",
      default: "",
      doc: "the ranks file's sha256 (hex): a different or damaged file is refused (empty: not checked)",
    },
    bos: { type: "boolean", default: true, doc: "start each document with <|begin_of_text|>" },
    eos: { type: "boolean", default: true, doc: "end each document with <|end_of_text|>" },
  },
  block: (p, ctx) => {
    const tok = tokenizer(p.tokenizerFile, p.tokenizerSha256);
    const out = new TokenShardWriter(
      join(ctx.runDir, "tokens", `shard-${String(ctx.task).padStart(5, "0")}.tok`),
      tok.vocabSize,
    );
    return {
      name: "tokenize",
      process(doc) {
        const ids = tok.encode(doc.text, { bos: p.bos, eos: p.eos });
        out.addDocument(ids);
        doc.meta.tokens = ids.length;
        return doc;
      },
      finish() {
        out.close();
      },
    };
  },
});
