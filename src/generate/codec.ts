// Text in and out of a model's ids, whatever its vocabulary: the Llama 3 tokenizer (src/tokenizer/), or
// a SentencePiece piece list such as llama2.c's `vocab.json` beside stories260K (encoding by its scores,
// pieces.ts). Both
// stream: generated ids go in one at a time and text comes out once its UTF-8 characters are complete.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readRegularFile } from "../io/regular.js";
import { readGGUFTokenizer } from "../model/checkpoint/ggufVocab.js";
import { Tokenizer } from "../tokenizer/index.js";
import { PieceEncoder } from "./pieces.js";

/** Largest vocab.json read (a 128K-piece list with scores is ~5 MB). */
const MAX_VOCAB_BYTES = 64 << 20;

export interface TextStream {
  /** Text completed by this id ("" while a character is unfinished). */
  push(id: number): string;
  /** Bytes of an unfinished character, as U+FFFD. */
  flush(): string;
}

export interface TextCodec {
  readonly name: string;
  /** Text → ids (without BOS); absent when the vocabulary can only decode. */
  encode?(text: string): number[];
  decode(ids: readonly number[]): string;
  /** A streaming decoder; `afterBos` says the stream continues right after a BOS token. */
  stream(afterBos: boolean): TextStream;
  /** The Llama 3 tokenizer itself (chat needs its special tokens), when that is what this is. */
  readonly tokenizer?: Tokenizer;
}

/** The Llama 3 tokenizer as a codec. */
export function tiktokenCodec(tokenizer: Tokenizer): TextCodec {
  return {
    name: tokenizer.name,
    tokenizer,
    encode: (text) => tokenizer.encode(text),
    decode: (ids) => tokenizer.decode(ids),
    stream: () => tokenizer.streamDecoder(),
  };
}

/**
 * A SentencePiece vocabulary given as its pieces (id = position): `<0xXX>` pieces are single bytes, the
 * others UTF-8 text with the word-boundary marker already a space. As llama2.c prints, the leading
 * space of the first piece after BOS (SentencePiece's dummy prefix) is dropped, and BOS/EOS print nothing.
 * With the pieces' scores it also encodes (llama2.c's rule, pieces.ts); without them it only decodes.
 */
export class PieceVocab implements TextCodec {
  readonly name: string;
  readonly encode?: (text: string) => number[];
  private readonly bytes: Uint8Array[];

  constructor(
    pieces: readonly string[],
    readonly bosId: number,
    readonly eosId: number,
    name = "pieces",
    scores?: readonly number[],
  ) {
    this.name = name;
    if (scores) {
      const encoder = new PieceEncoder(pieces, scores);
      this.encode = (text) => encoder.encode(text);
    }
    const enc = new TextEncoder();
    this.bytes = pieces.map((p, id) => {
      if (id === bosId || id === eosId) return new Uint8Array(0);
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(p);
      return m ? Uint8Array.of(Number.parseInt(m[1]!, 16)) : enc.encode(p);
    });
  }

  /**
   * Read llama2.c's converted `vocab.json` ({bos_id, eos_id, pieces: [{piece, score}]}); a list of plain
   * strings, or pieces without scores, gives a decode-only vocabulary.
   */
  static fromFile(path: string): PieceVocab {
    let json: { bos_id?: unknown; eos_id?: unknown; pieces?: unknown };
    const text = readRegularFile(path, MAX_VOCAB_BYTES).toString("utf8");
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(json.pieces)) throw new Error(`${path}: field 'pieces' must be a list`);
    const scores: number[] = [];
    const pieces = json.pieces.map((p: unknown, i: number) => {
      const s = typeof p === "string" ? p : (p as { piece?: unknown } | null)?.piece;
      if (typeof s !== "string") throw new Error(`${path}: field 'pieces[${i}].piece' must be a string`);
      const score = typeof p === "string" ? undefined : (p as { score?: unknown }).score;
      if (score !== undefined && typeof score !== "number")
        throw new Error(`${path}: field 'pieces[${i}].score' must be a number`);
      if (typeof score === "number") scores.push(score);
      return s;
    });
    const id = (v: unknown, field: string) => {
      if (v === undefined) return -1;
      if (!Number.isInteger(v)) throw new Error(`${path}: field '${field}' must be an integer`);
      return v as number;
    };
    const scored = scores.length === pieces.length ? scores : undefined;
    return new PieceVocab(pieces, id(json.bos_id, "bos_id"), id(json.eos_id, "eos_id"), path, scored);
  }

  get size(): number {
    return this.bytes.length;
  }

  /** The bytes of one piece (empty for BOS/EOS), e.g. for a structured-output vocabulary trie. */
  tokenBytes(id: number): Uint8Array {
    return this.piece(id);
  }

  private piece(id: number): Uint8Array {
    const b = this.bytes[id];
    if (!b) throw new Error(`${this.name}: id ${id} is outside the vocabulary of ${this.bytes.length}`);
    return b;
  }

  decode(ids: readonly number[]): string {
    const s = this.stream(false);
    let out = "";
    for (const id of ids) out += s.push(id);
    return out + s.flush();
  }

  stream(afterBos: boolean): TextStream {
    const decoder = new TextDecoder("utf-8");
    let prevBos = afterBos;
    return {
      push: (id) => {
        let b = this.piece(id);
        if (prevBos && b[0] === 0x20) b = b.subarray(1);
        prevBos = id === this.bosId;
        return decoder.decode(b, { stream: true });
      },
      flush: () => decoder.decode(),
    };
  }
}

/**
 * The codec for a model directory: `path` if given (a `vocab.json` piece list or a tiktoken ranks file),
 * else a `vocab.json` or `tokenizer.model` in the directory, else the shipped Llama 3 tokenizer when the
 * vocabulary is Llama 3's (128,256), else null (ids only). A `.gguf` model file gives its own vocabulary.
 */
export function codecFor(dir: string, vocabSize: number, path?: string): TextCodec | null {
  const open = (p: string): TextCodec =>
    p.endsWith(".json") ? PieceVocab.fromFile(p) : tiktokenCodec(Tokenizer.fromFile(p));
  if (path) {
    if (!existsSync(path)) throw new Error(`${path}: tokenizer file is missing`);
    return open(path);
  }
  if (dir.toLowerCase().endsWith(".gguf")) {
    const tok = readGGUFTokenizer(dir);
    if (tok) return tiktokenCodec(tok);
  }
  for (const f of ["vocab.json", "tokenizer.model"]) if (existsSync(join(dir, f))) return open(join(dir, f));
  if (vocabSize === 128256) return tiktokenCodec(Tokenizer.llama3());
  return null;
}
