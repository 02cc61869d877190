// The Llama 3 pre-tokeniser: splits text into the pieces ("words") that byte-level BPE then encodes one
// at a time. It implements Meta's pattern (below) as a hand-written scanner, because JavaScript's RegExp
// differs from the Rust engine tiktoken uses: no inline (?i:...) groups in Node 20, \s includes U+FEFF
// but not U+0085, and \p{L}/\p{N} follow the running Node's Unicode version. The scanner uses pinned
// tables (unicodeTables.ts, Unicode 16.0 as in tiktoken) so herd splits text exactly as tiktoken does,
// whatever Node it runs on. Alternatives of the pattern, tried in order at each position:
//   1. (?i:'s|'t|'re|'ve|'m|'ll|'d)       contractions, case-insensitive (Unicode simple folding: ſ = s)
//   2. [^\r\n\p{L}\p{N}]?\p{L}+           letters, with at most one leading non-letter/non-digit
//   3. \p{N}{1,3}                          digits in groups of at most three
//   4.  ?[^\s\p{L}\p{N}]+[\r\n]*           punctuation/symbols, optional leading space, trailing newlines
//   5. \s*[\r\n]+                          whitespace up to and including its last newline
//   6. \s+(?!\S)                           whitespace, leaving the last char to the next piece
//   7. \s+                                 any remaining whitespace
// Lone surrogates are "other" characters (like U+FFFD, which they become when encoded to UTF-8).
import { LETTER_RANGES, NUMBER_RANGES, SPACE_RANGES } from "./unicodeTables.js";

/** Meta's pre-tokenisation pattern for Llama 3, verbatim (Rust/Python regex syntax). */
export const META_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Character classes of the pattern. */
export const OTHER = 0; // not a letter, number or whitespace: punctuation, symbols, emoji, lone surrogates
export const LETTER = 1; // \p{L}
export const NUMBER = 2; // \p{N}
export const SPACE = 3; // \s other than CR and LF
export const NEWLINE = 4; // \r or \n

function unpack(packed: string): number[] {
  let at = 0;
  return packed.split(",").map((d) => (at += Number.parseInt(d, 36)));
}

/** CLASS[codePoint] = one of the classes above. */
export const CLASS: Uint8Array = (() => {
  const t = new Uint8Array(0x110000);
  const fill = (packed: string, cls: number) => {
    const r = unpack(packed);
    for (let k = 0; k < r.length; k += 2) t.fill(cls, r[k], r[k + 1]);
  };
  fill(LETTER_RANGES, LETTER);
  fill(NUMBER_RANGES, NUMBER);
  fill(SPACE_RANGES, SPACE);
  t[0x0a] = NEWLINE;
  t[0x0d] = NEWLINE;
  return t;
})();

/** Width (1 or 2 UTF-16 units) of the code point last classified by classAt. */
let width = 1;

/** Class of the code point starting at s[i]; sets `width`. A lone surrogate is OTHER. */
function classAt(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c < 0xd800 || c >= 0xe000) {
    width = 1;
    return CLASS[c]!;
  }
  if (c < 0xdc00 && i + 1 < s.length) {
    const d = s.charCodeAt(i + 1);
    if (d >= 0xdc00 && d < 0xe000) {
      width = 2;
      return CLASS[((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000]!;
    }
  }
  width = 1;
  return OTHER;
}

/** End of the run of `cls` code points starting at i. */
function runEnd(s: string, i: number, cls: number): number {
  const n = s.length;
  while (i < n && classAt(s, i) === cls) i += width;
  return i;
}

/** Length of a contraction ('s 't 're 've 'm 'll 'd, any case) starting at s[i], or 0. */
function contraction(s: string, i: number): number {
  if (i + 1 >= s.length) return 0;
  const a = s.charCodeAt(i + 1);
  const la = a === 0x17f ? 0x73 : a | 0x20; // U+017F LATIN SMALL LETTER LONG S folds to s
  if (la === 0x73 || la === 0x74 || la === 0x6d || la === 0x64) return a === 0x17f || a < 0x80 ? 2 : 0;
  if (a >= 0x80 || i + 2 >= s.length) return 0;
  const b = s.charCodeAt(i + 2);
  if (b >= 0x80) return 0;
  const lb = b | 0x20;
  if ((la === 0x72 || la === 0x76) && lb === 0x65) return 3; // 're 've
  if (la === 0x6c && lb === 0x6c) return 3; // 'll
  return 0;
}

/** End (exclusive, in UTF-16 units) of the piece that starts at s[i], i < s.length. */
export function pieceEnd(s: string, i: number): number {
  const n = s.length;
  const c0 = s.charCodeAt(i);
  // 1. contractions
  if (c0 === 0x27) {
    const k = contraction(s, i);
    if (k) return i + k;
  }
  const cls0 = classAt(s, i);
  const w0 = width;
  // 2. optional non-letter/non-number (not CR/LF) + letters
  if (cls0 === LETTER) return runEnd(s, i + w0, LETTER);
  if (cls0 !== NEWLINE && cls0 !== NUMBER && i + w0 < n && classAt(s, i + w0) === LETTER) {
    return runEnd(s, i + w0 + width, LETTER);
  }
  // 3. one to three numbers
  if (cls0 === NUMBER) {
    let j = i + w0;
    for (let k = 1; k < 3 && j < n && classAt(s, j) === NUMBER; k++) j += width;
    return j;
  }
  // 4. optional space + symbols + newlines
  if (cls0 === OTHER || (c0 === 0x20 && i + 1 < n && classAt(s, i + 1) === OTHER)) {
    const j = runEnd(s, cls0 === OTHER ? i + w0 : i + 1, OTHER);
    return runEnd(s, j, NEWLINE);
  }
  // 5-7. whitespace (every whitespace code point is in the BMP, so width 1)
  let j = i;
  let lastNewline = -1;
  while (j < n) {
    const c = CLASS[s.charCodeAt(j)]!;
    if (c === NEWLINE) lastNewline = j;
    else if (c !== SPACE) break;
    j++;
  }
  if (lastNewline >= 0) return lastNewline + 1; // 5. \s*[\r\n]+
  if (j === n || j - i === 1) return j; // 6. at the end of text, or 7. a single space
  return j - 1; // 6. \s+(?!\S): the last space starts the next piece
}

/** Splits text into pre-tokenisation pieces (for tests and tools; the encoder calls pieceEnd itself). */
export function splitPieces(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; ) {
    const j = pieceEnd(text, i);
    out.push(text.slice(i, j));
    i = j;
  }
  return out;
}
