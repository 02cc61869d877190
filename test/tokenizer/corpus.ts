// The parity corpus: more than 1 MB of varied text for comparing herd with the npm tiktoken package
// token for token. Natural text comes from the small compressed samples in test/fixtures/tokenizer/
// corpus (41 languages, Python code, English prose); adversarial text is generated from a fixed seed.
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { repoPath, rng } from "../helpers.js";

/** One natural sample, decompressed. */
export function sample(name: "multilingual" | "python" | "english"): string {
  const gz = readFileSync(repoPath("test", "fixtures", "tokenizer", "corpus", `${name}.txt.gz`));
  return gunzipSync(gz).toString("utf8");
}

// Fragments the generator strings together; each exercises a rule of the pattern or of UTF-8.
// biome-ignore format: a compact table reads better than one fragment per line
const FRAGMENTS: string[] = [
  // contractions in every case, and look-alikes that are not contractions
  "'s", "'S", "'t", "'T", "'re", "'RE", "'Re", "'rE", "'ve", "'VE", "'m", "'M", "'ll", "'LL", "'lL", "'d", "'D",
  "'ſ", "'ſt", "'K", "’s", "'x", "''s", "'", "don't", "DON'T", "y'all", "We'Ve", "a'lL", "it's", "'S'", "'5",
  // digits: ASCII runs, other scripts (Nd), letter-like numbers (Nl), fractions and superscripts (No)
  "1", "12", "123", "1234", "12345678901234567890", "3.14159", "1,000,000", "٠١٢٣٤٥٦٧٨٩", "०१२३४५", "１２３４",
  "²³", "½¾", "Ⅻ", "ⅷ", "〇", "𝟘𝟙𝟚", "೧೨", "x2", "2x", "A1B2C3",
  // whitespace: CRLF, CR, tabs, vertical tab, form feed, NEL, NBSP, ogham, en/em spaces, line/paragraph
  // separators, narrow NBSP, math space, ideographic space; and not whitespace: BOM, ZWSP, MVS
  " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r\n\r\n", "\r", " \n", "\t\n", "\v", "\f", "\u0085", "\u00a0",
  "\u1680", "\u2000", "\u2003", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\ufeff", "\u200b",
  "\u180e", " \u00a0 ", "\u3000\u3000", "\u0085\n", "\n\u0085", "    ", "        ",
  // lone surrogates (become U+FFFD), a pair, and reversed halves
  "\ud800", "\udfff", "\ud83e", "\udd99", "\ud83e\udd99", "\udd99\ud83e", "a\ud800b",
  // emoji: single, ZWJ sequences, skin tones, flags, keycaps, variation selectors
  "🦙", "😶‍🌫️", "👩🏽‍💻", "🇺🇳", "🏳️‍🌈", "1️⃣", "✅", "❤️", "🚀🚀🚀", "👍🏿",
  // scripts, combining marks (Mn/Mc are not letters), RTL, CJK, Hangul, Thai, Indic
  "Привет", "мир", "日本語", "のテキスト", "中文字符", "한국어", "ภาษาไทย", "हिन्दी", "தமிழ்", "עברית", "العربية",
  "e\u0301", "a\u0308", "ñ", "Ω", "ǅ", "ß", "İ", "ﬁ", "ﬅ", "Ꭰ", "ⓐ", "ᵃ",
  // letters that are new in Unicode 17 (letters to Node 20's RegExp, not to tiktoken's tables)
  "\u{10940}\u{10941}", "\u{11db0}", "\u{16ea0}", "\ua7ce", "\u088f", "\u{11de0}",
  // punctuation and symbols, code, markup
  "!", "?!", "...", "—", "–", "«»", "“quoted”", "(", ")", "{", "}", "[]", "<|eot_id|>", "<|begin_of_text|>",
  "=>", "!==", "&&", "||", "#", "@user", "https://example.com/a?b=c&d=e", "$x", "%", "^_^", "\\n", "\u0000",
  "\u001b[0m", "\u00ad", "\ufffd", "\uffff", "\u{10ffff}", "\u{e0001}", "\u{f0000}",
];

/** Deterministic adversarial text of about `units` UTF-16 units. */
export function adversarial(seed: number, units: number): string {
  const r = rng(seed);
  const parts: string[] = [];
  let n = 0;
  while (n < units) {
    let s: string;
    const k = r();
    if (k < 0.8) s = FRAGMENTS[Math.floor(r() * FRAGMENTS.length)]!;
    else if (k < 0.85)
      s = "9".repeat(1 + Math.floor(r() * 60)); // long digit runs
    else if (k < 0.9) s = " \t\n\r\u00a0\u3000".charAt(Math.floor(r() * 6)).repeat(1 + Math.floor(r() * 40));
    else if (k < 0.93)
      s = "abcxyz".repeat(1 + Math.floor(r() * 40)); // long letter runs: the heap BPE path
    else if (k < 0.95) s = "漢字かなカナ".repeat(1 + Math.floor(r() * 20));
    else s = String.fromCodePoint(Math.floor(r() * 0x30000)); // any code point, assigned or not
    if (r() < 0.3) s = r() < 0.5 ? s.toUpperCase() : ` ${s}`;
    parts.push(s);
    n += s.length;
  }
  return parts.join("");
}

/** The whole corpus, as separate documents. */
export function parityCorpus(): string[] {
  const docs = [sample("multilingual"), sample("python"), sample("english")];
  // the English sample with CRLF line ends and with mixed tabs/spaces
  docs.push(sample("english").slice(0, 20000).replace(/\n/g, "\r\n"));
  docs.push(sample("python").slice(0, 20000).replace(/ {4}/g, "\t").replace(/\n/g, " \n"));
  for (let seed = 1; seed <= 8; seed++) docs.push(adversarial(seed, 30000));
  return docs;
}
