// The tokenizer inside a GGUF file (`tokenizer.ggml.*`, llama.cpp's "gpt2" BPE vocabulary), to and from
// herd's Tokenizer (tiktoken-style byte-level BPE over Meta's pre-tokenisation pattern).
//
//   tokenizer.ggml.model        "gpt2"                       tokenizer.ggml.pre  "llama-bpe" (Meta's pattern)
//   tokenizer.ggml.tokens       token strings by id, bytes in GPT-2's byte-to-unicode form (a printable
//                               character per byte); special tokens as their text
//   tokenizer.ggml.token_type   1 normal, 3 control (special), 4 user-defined, 6 byte, 5 unused
//   tokenizer.ggml.merges       "A B" pairs, highest priority first
//   tokenizer.ggml.{bos,eos,eot,padding}_token_id, tokenizer.chat_template
// Reading: the ranks of herd's BPE are the token ids (true of Llama 3's vocabulary and of every vocab
// herd writes: the merge list is in id order of the merged tokens, which the reader checks, so ranking
// by id and ranking by merge priority agree). Control and user-defined tokens become special tokens.
// Writing: the merges are derived from the ranks as llama.cpp's converter does for tiktoken vocabularies:
// each multi-byte token is split by running BPE on its bytes with only lower-ranked merges allowed,
// which leaves exactly the two parts it was merged from.
import type { Ranks } from "../../tokenizer/ranks.js";
import { Tokenizer } from "../../tokenizer/tiktoken.js";
import { type GGUFArray, type GGUFEntry, GGUFFile, GGUFType, gguf } from "./gguf.js";

/** Set on a vocabulary of placeholders (a model without a tokenizer): herd reads such a file as having none. */
export const PLACEHOLDER_KEY = "herd.placeholder_vocabulary";

export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** GPT-2's byte → printable character table (printable Latin-1 bytes map to themselves, the rest to U+0100…). */
export function byteToUnicode(): string[] {
  const out = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCodePoint(printable ? b : 256 + n++);
  }
  return out;
}

let unicodeToByteTable: Map<string, number> | null = null;
function unicodeToByte(): Map<string, number> {
  unicodeToByteTable ??= new Map(byteToUnicode().map((c, b) => [c, b]));
  return unicodeToByteTable;
}

/** A token's bytes in GPT-2's printable form. */
export function encodeTokenBytes(bytes: Uint8Array): string {
  const t = byteToUnicode();
  let s = "";
  for (const b of bytes) s += t[b];
  return s;
}

function stringItems(file: GGUFFile, key: string): string[] {
  const e = file.metadata.get(key);
  const arr = e?.value as GGUFArray | undefined;
  if (!e || e.type !== GGUFType.ARRAY || arr!.itemType !== GGUFType.STRING)
    throw new Error(`${file.path}: metadata key '${key}' must be an array of strings`);
  return arr!.items as string[];
}

function intItems(file: GGUFFile, key: string): number[] | null {
  const e = file.metadata.get(key);
  if (!e) return null;
  const arr = e.value as GGUFArray;
  if (
    e.type !== GGUFType.ARRAY ||
    typeof arr.items[0] === "bigint" ||
    arr.items.some((x) => typeof x !== "number")
  )
    throw new Error(`${file.path}: metadata key '${key}' must be an array of 32-bit integers`);
  return arr.items as number[];
}

/**
 * herd's Tokenizer from a GGUF file's vocabulary, or null when the file has none. Errors (naming the
 * file, key and token id) for a vocabulary herd's BPE cannot reproduce: not "gpt2", another
 * pre-tokeniser than Llama 3's, special tokens among the BPE ids, merges out of id order.
 */
export function tokenizerFromGGUF(file: GGUFFile): Tokenizer | null {
  const model = file.get("tokenizer.ggml.model");
  if (model === undefined || model === "none" || model === "no_vocab") return null;
  if (file.get(PLACEHOLDER_KEY) === true) return null;
  if (model !== "gpt2")
    throw new Error(
      `${file.path}: metadata key 'tokenizer.ggml.model' is '${String(model)}'; herd reads "gpt2" (byte-level BPE) vocabularies`,
    );
  const pre = file.get("tokenizer.ggml.pre") ?? "default";
  if (pre !== "llama-bpe" && pre !== "llama3" && pre !== "default")
    throw new Error(
      `${file.path}: metadata key 'tokenizer.ggml.pre' is '${String(pre)}'; herd's tokenizer splits text as Llama 3 ("llama-bpe") does`,
    );
  const tokens = stringItems(file, "tokenizer.ggml.tokens");
  const types = intItems(file, "tokenizer.ggml.token_type");
  if (types && types.length !== tokens.length)
    throw new Error(
      `${file.path}: metadata key 'tokenizer.ggml.token_type' has ${types.length} entries for ${tokens.length} tokens`,
    );
  const table = unicodeToByte();
  const ranks = new Map<string, number>();
  const specials = new Map<string, number>();
  let numRanks = 0;
  for (let id = 0; id < tokens.length; id++) {
    const tok = tokens[id]!;
    const type = types?.[id] ?? TOKEN_TYPE.NORMAL;
    if (type === TOKEN_TYPE.CONTROL || type === TOKEN_TYPE.USER_DEFINED || type === TOKEN_TYPE.UNUSED) {
      specials.set(tok, id);
      continue;
    }
    if (specials.size > 0)
      throw new Error(
        `${file.path}: 'tokenizer.ggml.tokens'[${id}] is an ordinary token after special ones; herd's tokenizer needs the special tokens last`,
      );
    let bin = "";
    for (const ch of tok) {
      const b = table.get(ch);
      if (b === undefined)
        throw new Error(
          `${file.path}: 'tokenizer.ggml.tokens'[${id}] (${JSON.stringify(tok)}) has a character outside GPT-2's byte alphabet`,
        );
      bin += String.fromCharCode(b);
    }
    if (ranks.has(bin))
      throw new Error(`${file.path}: 'tokenizer.ggml.tokens'[${id}] repeats token ${ranks.get(bin)}`);
    ranks.set(bin, id);
    numRanks = id + 1;
  }
  checkMergeOrder(file, tokens);
  const r: Ranks = { ranks, size: numRanks };
  return new Tokenizer(r, { name: `${file.path}`, specialTokens: specials });
}

/**
 * The merged tokens of the merge list must come in id order (ranks = ids, see header). One token may be
 * made by several merges in a row: Hugging Face's converter of tiktoken vocabularies (Llama 3's
 * tokenizer.json, from which llama.cpp's files are made) lists every split of a token whose two parts
 * are tokens, all at the token's rank.
 */
function checkMergeOrder(file: GGUFFile, tokens: string[]): void {
  if (!file.metadata.has("tokenizer.ggml.merges")) return;
  const merges = stringItems(file, "tokenizer.ggml.merges");
  const ids = new Map<string, number>();
  for (let i = 0; i < tokens.length; i++) ids.set(tokens[i]!, i);
  let last = -1;
  merges.forEach((m, i) => {
    const sp = m.indexOf(" ");
    const id = sp > 0 ? ids.get(m.slice(0, sp) + m.slice(sp + 1)) : undefined;
    if (id === undefined)
      throw new Error(
        `${file.path}: 'tokenizer.ggml.merges'[${i}] (${JSON.stringify(m)}) does not make a token`,
      );
    if (id < last)
      throw new Error(
        `${file.path}: 'tokenizer.ggml.merges'[${i}] makes token ${id} after token ${last}; herd ranks BPE merges by token id, so merges must be in id order`,
      );
    last = id;
  });
}

/** The two parts token `rank` was merged from: BPE on its bytes using only lower-ranked merges. */
function mergeParts(bin: string, rank: number, ranks: ReadonlyMap<string, number>): [string, string] | null {
  const parts = [...bin];
  for (;;) {
    let best = -1;
    let bestRank = rank;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = ranks.get(parts[i]! + parts[i + 1]!);
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0) break;
    parts.splice(best, 2, parts[best]! + parts[best + 1]!);
  }
  return parts.length === 2 ? [parts[0]!, parts[1]!] : null;
}

/** Llama 3 instruct's turn format (spec §4) as a Jinja template: herd's own, without the tool prompts. */
export const LLAMA3_CHAT_TEMPLATE =
  "{{- bos_token }}" +
  "{%- for message in messages %}" +
  "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}" +
  "{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";

/**
 * The `tokenizer.*` metadata for a vocabulary of `vocabSize` ids: from `tok` when given (ids beyond it
 * are padded with unused placeholder tokens), else placeholders only (the first 256 ids as the 256
 * bytes, so llama.cpp has a byte-level vocabulary to load; the model is then driven by ids, and herd
 * reads the file back as having no tokenizer: PLACEHOLDER_KEY).
 */
export function vocabMetadata(
  tok: Tokenizer | null,
  vocabSize: number,
  ids: { bos: number | null; eos: number[] },
): Map<string, GGUFEntry> {
  const tokens: string[] = [];
  const types: number[] = [];
  const merges: string[] = [];
  const bu = byteToUnicode();
  if (tok) {
    const ranks = new Map<string, number>();
    const bins: string[] = [];
    for (let id = 0; id < tok.numRanks; id++) {
      const bin = String.fromCharCode(...tok.tokenBytes(id));
      bins.push(bin);
      ranks.set(bin, id);
    }
    for (let id = 0; id < tok.numRanks; id++) {
      const bin = bins[id]!;
      tokens.push([...bin].map((c) => bu[c.charCodeAt(0)]).join(""));
      types.push(TOKEN_TYPE.NORMAL);
      if (bin.length < 2) continue;
      const p = mergeParts(bin, id, ranks);
      if (p)
        merges.push(
          `${[...p[0]].map((c) => bu[c.charCodeAt(0)]).join("")} ${[...p[1]].map((c) => bu[c.charCodeAt(0)]).join("")}`,
        );
    }
    const byId = new Map([...tok.specialTokens].map(([name, id]) => [id, name]));
    for (let id = tok.numRanks; id < tok.vocabSize; id++) {
      tokens.push(byId.get(id) ?? `<|herd_unused_${id}|>`);
      types.push(byId.has(id) ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.UNUSED);
    }
  } else
    for (let id = 0; id < Math.min(256, vocabSize); id++) {
      tokens.push(bu[id]!);
      types.push(TOKEN_TYPE.NORMAL);
    }
  if (tokens.length > vocabSize)
    throw new Error(
      `GGUF export: the tokenizer has ${tokens.length} ids, the model's vocabulary ${vocabSize}`,
    );
  for (let id = tokens.length; id < vocabSize; id++) {
    tokens.push(`<|herd_unused_${id}|>`);
    types.push(TOKEN_TYPE.UNUSED);
  }
  const m = new Map<string, GGUFEntry>();
  if (!tok) m.set(PLACEHOLDER_KEY, gguf.bool(true));
  m.set("tokenizer.ggml.model", gguf.str("gpt2"));
  m.set("tokenizer.ggml.pre", gguf.str("llama-bpe"));
  m.set("tokenizer.ggml.tokens", gguf.arr(GGUFType.STRING, tokens));
  m.set("tokenizer.ggml.token_type", gguf.arr(GGUFType.INT32, types));
  m.set("tokenizer.ggml.merges", gguf.arr(GGUFType.STRING, merges));
  if (ids.bos !== null) m.set("tokenizer.ggml.bos_token_id", gguf.u32(ids.bos));
  if (ids.eos[0] !== undefined) m.set("tokenizer.ggml.eos_token_id", gguf.u32(ids.eos[0]));
  const eot = tok?.specialTokens.get("<|eot_id|>");
  if (eot !== undefined) {
    m.set("tokenizer.ggml.eot_token_id", gguf.u32(eot));
    m.set("tokenizer.chat_template", gguf.str(LLAMA3_CHAT_TEMPLATE));
  }
  m.set("tokenizer.ggml.add_bos_token", gguf.bool(ids.bos !== null));
  return m;
}

/** The tokenizer stored in the GGUF file at `path`, or null when it has none. */
export function readGGUFTokenizer(path: string): Tokenizer | null {
  const f = GGUFFile.open(path);
  try {
    return tokenizerFromGGUF(f);
  } finally {
    f.close();
  }
}
