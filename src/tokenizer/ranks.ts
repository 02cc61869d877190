// tiktoken-format ranks files: one token per line, "<base64 of the token's bytes> <rank>". Parsing with
// validation (every error names the file, the line and what is wrong; ranks dense and in order; the
// file's size, its number of ranks and each line's length bounded before anything is allocated), sha256 pinning of the files we
// know (Meta's Llama 3 tokenizer.model, shipped in assets/llama3/), and formatting them (trainIO writes them with src/io/atomic.ts).
import { createHash } from "node:crypto";
import { closeSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../core/paths.js";
import { openRegular } from "../io/regular.js";

/** A parsed ranks file: token bytes (as binary strings, one char per byte) → rank. */
export interface Ranks {
  /** binary string → rank */
  ranks: Map<string, number>;
  /** Number of ranks (they are 0 … size − 1). */
  size: number;
  /** sha256 of the file's bytes (hex), when parsed from bytes. */
  sha256?: string;
}

/** Files herd recognises, pinned by content. */
export const KNOWN_RANKS = {
  llama3: {
    file: "assets/llama3/tokenizer.model",
    sha256: "82e9d31979e92ab929cd544440f129d9ecd797b69e327f80f17e1c50d5551b55",
    size: 128000,
  },
} as const;

export type KnownRanksName = keyof typeof KNOWN_RANKS;

/** The error thrown for a malformed ranks file. */
export class RanksFormatError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    what: string,
  ) {
    super(line > 0 ? `${file}:${line}: ${what}` : `${file}: ${what}`);
    this.name = "RanksFormatError";
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const RANK = /^\d{1,10}$/;

/** Most ranks a file may hold (Meta's has 128000). */
export const MAX_RANKS = 1 << 21;
/** Longest line accepted, in UTF-16 units (Meta's longest token is 128 bytes, 172 base64 characters). */
export const MAX_LINE = 1 << 16;
/** Largest ranks file read (Meta's is 2.2 MB). */
export const MAX_FILE_BYTES = 1 << 28;

/** Parses the text of a ranks file; `file` names it in error messages. Ranks must be dense and in
 * order (line k of the tokens has rank k), as in Meta's file and the files herd trains, so nothing is
 * ever sized by a rank the file merely claims. */
export function parseRanks(text: string, file = "<ranks>", opts: { maxRanks?: number } = {}): Ranks {
  const maxRanks = opts.maxRanks ?? MAX_RANKS;
  const ranks = new Map<string, number>();
  const lineOfRank: number[] = [];
  let lineNo = 0;
  let pos = 0;
  while (pos < text.length) {
    let eol = text.indexOf("\n", pos);
    if (eol < 0) eol = text.length;
    lineNo++;
    if (eol - pos > MAX_LINE) {
      throw new RanksFormatError(file, lineNo, `line is ${eol - pos} characters long (at most ${MAX_LINE})`);
    }
    const line = text.slice(pos, eol).trim();
    pos = eol + 1;
    if (line === "") continue; // blank lines are skipped, as Meta's loader does
    const fields = line.split(/\s+/);
    if (fields.length !== 2) {
      throw new RanksFormatError(
        file,
        lineNo,
        `expected "<base64 token> <rank>", found ${fields.length} field(s)`,
      );
    }
    const [b64, r] = fields as [string, string];
    if (!BASE64.test(b64))
      throw new RanksFormatError(file, lineNo, `token "${clip(b64)}" is not valid base64`);
    if (!RANK.test(r) || Number(r) > 0x7ffffffe) {
      throw new RanksFormatError(file, lineNo, `rank "${clip(r)}" is not an integer in 0…2147483646`);
    }
    const rank = Number(r);
    const expected = ranks.size;
    if (expected >= maxRanks) throw new RanksFormatError(file, lineNo, `more than ${maxRanks} ranks`);
    if (rank < expected) {
      const on = lineOfRank[rank]!;
      throw new RanksFormatError(
        file,
        lineNo,
        `expected rank ${expected}, found ${rank} (rank ${rank} is on line ${on})`,
      );
    }
    if (rank > expected) {
      throw new RanksFormatError(
        file,
        lineNo,
        `expected rank ${expected}, found ${rank}; ranks must run 0, 1, 2, … in order`,
      );
    }
    const token = atob(b64);
    if (token.length === 0) throw new RanksFormatError(file, lineNo, "token is empty");
    if (ranks.has(token)) {
      const first = lineOfRank[ranks.get(token)!]!;
      throw new RanksFormatError(file, lineNo, `token "${b64}" already has a rank on line ${first}`);
    }
    lineOfRank.push(lineNo);
    ranks.set(token, rank);
  }
  if (ranks.size === 0) throw new RanksFormatError(file, 0, "no tokens (empty ranks file)");
  for (let b = 0; b < 256; b++) {
    if (!ranks.has(String.fromCharCode(b))) {
      const hex = b.toString(16).padStart(2, "0");
      throw new RanksFormatError(
        file,
        0,
        `no token for the single byte 0x${hex}; byte-level BPE needs all 256`,
      );
    }
  }
  return { ranks, size: ranks.size };
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/** sha256 of bytes, hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Throws unless `actual` (the file's sha256, hex) is `expected` (any case). */
export function checkSha256(path: string, actual: string, expected: string): void {
  if (expected.toLowerCase() !== actual) {
    throw new Error(`${path}: sha256 is ${actual}, expected ${expected} (a different or damaged file)`);
  }
}

/** Reads and parses a ranks file; with `sha256`, first checks the file's hash. */
export function readRanks(path: string, opts: { sha256?: string } = {}): Ranks {
  const { fd, size } = openRegular(path);
  let bytes: Buffer;
  try {
    if (size > MAX_FILE_BYTES)
      throw new RanksFormatError(path, 0, `larger than ${MAX_FILE_BYTES} bytes; not a ranks file`);
    bytes = readFileSync(fd);
  } finally {
    closeSync(fd);
  }
  const sha256 = sha256Hex(bytes);
  if (opts.sha256 !== undefined) checkSha256(path, sha256, opts.sha256);
  const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  return { ...parseRanks(text, path), sha256 };
}

/** The name of the known file with this sha256, if any. */
export function knownRanksBySha256(sha256: string): KnownRanksName | undefined {
  for (const [name, k] of Object.entries(KNOWN_RANKS)) if (k.sha256 === sha256) return name as KnownRanksName;
  return undefined;
}

// Re-exported for the modules that took it from here (src/core/paths.ts holds the one walk).
export { packageRoot };

/** Path of a shipped known ranks file. */
export function knownRanksPath(name: KnownRanksName): string {
  return join(packageRoot(), KNOWN_RANKS[name].file);
}

/** Ranks as tiktoken-format text, in rank order. */
export function formatRanks(tokens: readonly Uint8Array[]): string {
  const lines = new Array<string>(tokens.length);
  for (let r = 0; r < tokens.length; r++) lines[r] = `${Buffer.from(tokens[r]!).toString("base64")} ${r}`;
  return `${lines.join("\n")}\n`;
}
