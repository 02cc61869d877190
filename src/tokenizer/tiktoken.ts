// The Llama 3 tokenizer: tiktoken-style byte-level BPE over Meta's pre-tokenisation pattern, with the
// 256 special tokens after the ranks. Encodes text to ids (special-token text is ordinary text unless
// the caller allows it by name, as tiktoken and Meta do), decodes ids to bytes and text, and streams.
// Strings are encoded as UTF-8 with each lone surrogate replaced by U+FFFD (EF BF BD), as TextEncoder
// and the npm tiktoken package do. Meta's chunking of very long inputs (a guard against a crash in
// Python tiktoken) is not needed here and not done, so long inputs tokenize as tiktoken does unchunked.
import { bytePairEncode, PairTable } from "./bpe.js";
import { pieceEnd } from "./pattern.js";
import {
  checkSha256,
  KNOWN_RANKS,
  type KnownRanksName,
  knownRanksBySha256,
  knownRanksPath,
  type Ranks,
  readRanks,
} from "./ranks.js";
import { BEGIN_OF_TEXT, END_OF_TEXT, llama3SpecialTokens } from "./specialTokens.js";
import { StreamDecoder } from "./streaming.js";

export interface EncodeOptions {
  /** Prepend <|begin_of_text|>. */
  bos?: boolean;
  /** Append <|end_of_text|>. */
  eos?: boolean;
  /** Special tokens recognised in the text: "all" or a list of names. Default: none (ordinary text). */
  allowedSpecial?: "all" | Iterable<string>;
}

/** Pieces up to this many UTF-16 units are cached. */
const CACHE_PIECE_MAX = 64;
/** The cache is cleared when it holds this many pieces. */
const CACHE_ENTRIES_MAX = 1 << 18;

const utf8 = new TextEncoder();

export class Tokenizer {
  /** "llama3" for Meta's file, else the path or "custom". */
  readonly name: string;
  /** Number of BPE ids (highest rank + 1); the first special id. */
  readonly numRanks: number;
  /** Total ids: ranks + special tokens. */
  readonly vocabSize: number;
  readonly specialTokens: ReadonlyMap<string, number>;
  readonly bosId: number;
  readonly eosId: number;
  private readonly ranks: Map<string, number>;
  private readonly pairs: PairTable;
  /** bytes of every id, concatenated; id k spans offsets[k]..offsets[k+1] (empty = unused id) */
  private readonly pool: Uint8Array;
  private readonly offsets: Uint32Array;
  private readonly specialNames: (string | undefined)[];
  private readonly cache = new Map<string, number | number[]>();
  private specialRegexCache = new Map<string, RegExp>();

  constructor(ranks: Ranks, opts: { name?: string; specialTokens?: Map<string, number> } = {}) {
    this.name = opts.name ?? "custom";
    this.ranks = ranks.ranks;
    this.pairs = new PairTable(ranks.ranks);
    this.numRanks = ranks.size;
    const specials = opts.specialTokens ?? llama3SpecialTokens(ranks.size);
    this.specialTokens = specials;
    let top = ranks.size;
    for (const id of specials.values()) {
      if (id < ranks.size) throw new Error(`tokenizer: special token id ${id} collides with the BPE ranks`);
      top = Math.max(top, id + 1);
    }
    this.vocabSize = top;
    this.bosId = specials.get(BEGIN_OF_TEXT) ?? -1;
    this.eosId = specials.get(END_OF_TEXT) ?? -1;
    // decode table
    const lengths = new Uint32Array(top);
    let total = 0;
    for (const [tok, r] of this.ranks) {
      lengths[r] = tok.length;
      total += tok.length;
    }
    this.specialNames = new Array(top);
    const specialBytes = new Map<number, Uint8Array>();
    for (const [name, id] of specials) {
      const b = utf8.encode(name);
      specialBytes.set(id, b);
      this.specialNames[id] = name;
      lengths[id] = b.length;
      total += b.length;
    }
    this.offsets = new Uint32Array(top + 1);
    for (let k = 0; k < top; k++) this.offsets[k + 1] = this.offsets[k]! + lengths[k]!;
    this.pool = new Uint8Array(total);
    for (const [tok, r] of this.ranks) {
      const at = this.offsets[r]!;
      for (let i = 0; i < tok.length; i++) this.pool[at + i] = tok.charCodeAt(i);
    }
    for (const [id, b] of specialBytes) this.pool.set(b, this.offsets[id]!);
  }

  /** Meta's Llama 3 tokenizer from the shipped copy (sha256-checked), loaded once; with `sha256`, the
   * shipped file must also have that hash. */
  static llama3(opts: { sha256?: string } = {}): Tokenizer {
    llama3Instance ??= Tokenizer.fromKnown("llama3");
    if (opts.sha256 !== undefined)
      checkSha256(knownRanksPath("llama3"), KNOWN_RANKS.llama3.sha256, opts.sha256);
    return llama3Instance;
  }

  /** A known ranks file shipped with herd, checked against its pinned sha256. */
  static fromKnown(name: KnownRanksName): Tokenizer {
    const ranks = readRanks(knownRanksPath(name), { sha256: KNOWN_RANKS[name].sha256 });
    return new Tokenizer(ranks, { name });
  }

  /** A tokenizer from any tiktoken-format ranks file; `sha256` pins its content. */
  static fromFile(path: string, opts: { sha256?: string } = {}): Tokenizer {
    const ranks = readRanks(path, opts);
    return new Tokenizer(ranks, { name: (ranks.sha256 && knownRanksBySha256(ranks.sha256)) || path });
  }

  /** Encodes text; special-token text is ordinary text unless allowed by name. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (opts.bos) out.push(this.special(BEGIN_OF_TEXT));
    const re = opts.allowedSpecial ? this.specialRegex(opts.allowedSpecial) : null;
    if (!re) this.encodeOrdinaryInto(text, out);
    else {
      let last = 0;
      re.lastIndex = 0;
      for (let m = re.exec(text); m; m = re.exec(text)) {
        this.encodeOrdinaryInto(text.slice(last, m.index), out);
        out.push(this.specialTokens.get(m[0])!);
        last = m.index + m[0].length;
      }
      this.encodeOrdinaryInto(text.slice(last), out);
    }
    if (opts.eos) out.push(this.special(END_OF_TEXT));
    return out;
  }

  /** Encodes text with no special tokens at all. */
  encodeOrdinary(text: string): number[] {
    const out: number[] = [];
    this.encodeOrdinaryInto(text, out);
    return out;
  }

  /** Number of tokens `encodeOrdinary(text)` gives. */
  count(text: string): number {
    return this.encodeOrdinary(text).length;
  }

  /** The id of a special token, by name. */
  special(name: string): number {
    const id = this.specialTokens.get(name);
    if (id === undefined) throw new Error(`tokenizer: no special token ${name}`);
    return id;
  }

  isSpecial(id: number): boolean {
    return this.specialNames[id] !== undefined;
  }

  /** Encodes one piece of ordinary text and appends its ids. */
  private encodeOrdinaryInto(text: string, out: number[]): void {
    const cache = this.cache;
    const n = text.length;
    for (let i = 0; i < n; ) {
      const j = pieceEnd(text, i);
      const piece = text.slice(i, j);
      i = j;
      const hit = cache.get(piece);
      if (hit !== undefined) {
        if (typeof hit === "number") out.push(hit);
        else for (let k = 0; k < hit.length; k++) out.push(hit[k]!);
        continue;
      }
      if (scratch.length < 3 * piece.length) scratch = new Uint8Array(6 * piece.length);
      const nBytes = utf8.encodeInto(piece, scratch).written;
      const bytes = scratch.subarray(0, nBytes);
      const whole = this.pairs.tokenOf(bytes, nBytes);
      let ids: number | number[];
      if (whole >= 0) {
        ids = whole;
        out.push(whole);
      } else {
        const start = out.length;
        bytePairEncode(bytes, nBytes, this.pairs, out);
        ids = out.length - start === 1 ? out[start]! : out.slice(start);
      }
      if (piece.length <= CACHE_PIECE_MAX) {
        if (cache.size >= CACHE_ENTRIES_MAX) cache.clear();
        cache.set(piece, ids);
      }
    }
  }

  private specialRegex(allowed: "all" | Iterable<string>): RegExp | null {
    const names = allowed === "all" ? [...this.specialTokens.keys()] : [...allowed];
    if (names.length === 0) return null;
    const key = allowed === "all" ? "\u0000all" : names.join("\u0000");
    let re = this.specialRegexCache.get(key);
    if (!re) {
      for (const name of names)
        if (!this.specialTokens.has(name)) throw new Error(`tokenizer: no special token ${name}`);
      re = new RegExp(names.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "g");
      this.specialRegexCache.set(key, re);
    }
    return re;
  }

  /** The bytes of one id (a special token's bytes are its name in UTF-8). */
  tokenBytes(id: number): Uint8Array {
    this.check(id);
    return this.pool.slice(this.offsets[id]!, this.offsets[id + 1]!);
  }

  /** Concatenated bytes of the ids. */
  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    const { pool, offsets } = this;
    let total = 0;
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!;
      if (!(id >= 0 && id < this.vocabSize) || offsets[id] === offsets[id + 1]) this.check(id);
      total += offsets[id + 1]! - offsets[id]!;
    }
    const out = new Uint8Array(total);
    let p = 0;
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!;
      const end = offsets[id + 1]!;
      for (let b = offsets[id]!; b < end; b++) out[p++] = pool[b]!;
    }
    return out;
  }

  /** Decodes ids to text (invalid UTF-8 becomes U+FFFD; special tokens become their names). */
  decode(ids: ArrayLike<number>): string {
    return textDecoder.decode(this.decodeBytes(ids));
  }

  /** A decoder that turns ids into text as they arrive, never splitting a UTF-8 character. */
  streamDecoder(): StreamDecoder {
    return new StreamDecoder((id) => {
      this.check(id);
      return this.pool.subarray(this.offsets[id]!, this.offsets[id + 1]!);
    });
  }

  private check(id: number): void {
    if (
      !Number.isInteger(id) ||
      id < 0 ||
      id >= this.vocabSize ||
      this.offsets[id] === this.offsets[id + 1]
    ) {
      throw new RangeError(`tokenizer: no token with id ${id} (vocabulary of ${this.vocabSize})`);
    }
  }
}

let llama3Instance: Tokenizer | undefined;
/** UTF-8 of the piece being encoded (lone surrogates become EF BF BD, as with TextEncoder). */
let scratch = new Uint8Array(1024);
const textDecoder = new TextDecoder("utf-8");

/** One char (0–255) per byte. */
export function binaryString(bytes: Uint8Array): string {
  if (bytes.length <= 4096) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  let s = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as unknown as number[]);
  }
  return s;
}
