// A model's vocabulary as byte strings in a trie, so the allowed-token mask of a JSON automaton state is
// one walk over the trie (a subtree is skipped as soon as its prefix is refused) instead of feeding all
// 128K tokens one by one. The trie is stored in preorder: node i's subtree is i … i+size[i]-1, so the walk
// is a flat loop keeping one automaton state per depth. A second trie holds only the tokens that are not
// "plain string text" (see plainTokens): inside a string those all keep the state unchanged, so their mask
// bits are copied and only the others are walked.
import { PieceVocab, type TextCodec } from "../../generate/codec.js";
import type { Tokenizer } from "../../tokenizer/index.js";
import { type State, step, strStep } from "./automaton.js";

/** The vocabulary a constraint ranges over. */
export interface ConstraintVocab {
  readonly size: number;
  /** Bytes of each id; null for special or empty ids, which a constraint never allows (bar stop ids). */
  readonly bytes: readonly (Uint8Array | null)[];
  /** Ids that end the reply, allowed once the value is complete. */
  readonly stopIds: readonly number[];
}

/** The vocabulary of a Llama 3 tokenizer (special tokens excluded). */
export function tokenizerVocab(tok: Tokenizer, stopIds: readonly number[]): ConstraintVocab {
  const bytes: (Uint8Array | null)[] = [];
  for (let id = 0; id < tok.vocabSize; id++) {
    if (tok.isSpecial(id)) bytes.push(null);
    else {
      let b: Uint8Array | null = null;
      try {
        b = tok.tokenBytes(id);
      } catch {
        b = null; // an unused id
      }
      bytes.push(b && b.length > 0 ? b : null);
    }
  }
  return { size: tok.vocabSize, bytes, stopIds };
}

/** The vocabulary of a codec: the Llama 3 tokenizer's, or a SentencePiece piece list's (stories260K). */
export function codecVocab(codec: TextCodec, stopIds: readonly number[]): ConstraintVocab {
  if (codec.tokenizer) return tokenizerVocab(codec.tokenizer, stopIds);
  if (!(codec instanceof PieceVocab))
    throw new Error(`structured output: no byte vocabulary for ${codec.name}`);
  const bytes: (Uint8Array | null)[] = [];
  for (let id = 0; id < codec.size; id++) {
    const b = codec.tokenBytes(id);
    bytes.push(b.length > 0 ? b : null);
  }
  return { size: codec.size, bytes, stopIds };
}

export class VocabTrie {
  /** preorder arrays; node 0 is the root */
  readonly label: Uint8Array;
  readonly depth: Uint16Array;
  readonly size: Int32Array;
  /** first token id ending at the node, or -1 */
  readonly token: Int32Array;
  /** further ids with the same bytes */
  readonly more = new Map<number, number[]>();
  readonly maxDepth: number;

  constructor(bytes: readonly (Uint8Array | null)[], ids: readonly number[]) {
    const sorted = ids.filter((id) => bytes[id]).sort((a, b) => compare(bytes[a]!, bytes[b]!));
    const label: number[] = [0];
    const depth: number[] = [0];
    const token: number[] = [-1];
    const path: number[] = [0];
    let prev: Uint8Array = new Uint8Array(0);
    for (const id of sorted) {
      const b = bytes[id]!;
      let lcp = 0;
      while (lcp < b.length && lcp < prev.length && b[lcp] === prev[lcp]) lcp++;
      if (lcp === b.length && b.length === prev.length) {
        const at = path[b.length]!;
        const list = this.more.get(at) ?? [];
        list.push(id);
        this.more.set(at, list);
        continue;
      }
      path.length = lcp + 1;
      for (let d = lcp; d < b.length; d++) {
        path.push(label.length);
        label.push(b[d]!);
        depth.push(d + 1);
        token.push(-1);
      }
      token[path[b.length]!] = id;
      prev = b;
    }
    const n = label.length;
    this.label = Uint8Array.from(label);
    this.depth = Uint16Array.from(depth);
    this.token = Int32Array.from(token);
    this.size = new Int32Array(n).fill(1);
    // subtree sizes: a node's subtree ends where the next node of its depth or less begins
    const stack: number[] = [];
    for (let i = 0; i <= n; i++) {
      const d = i < n ? this.depth[i]! : -1;
      while (stack.length > 0 && this.depth[stack[stack.length - 1]!]! >= d) {
        const j = stack.pop()!;
        this.size[j] = i - j;
      }
      stack.push(i);
    }
    let maxDepth = 0;
    for (const d of depth) if (d > maxDepth) maxDepth = d;
    this.maxDepth = maxDepth;
  }

  /** Sets mask[id] = 1 for every token whose bytes the automaton accepts from `st`. */
  walk(st: State, mask: Uint8Array): void {
    const states: (State | null)[] = new Array(this.maxDepth + 1);
    states[0] = st;
    const n = this.label.length;
    const { label, depth, size, token } = this;
    for (let i = 1; i < n; ) {
      const next = step(states[depth[i]! - 1]!, label[i]!);
      if (next === null) {
        i += size[i]!;
        continue;
      }
      states[depth[i]!] = next;
      const id = token[i]!;
      if (id >= 0) {
        mask[id] = 1;
        const more = this.more.get(i);
        if (more) for (const m of more) mask[m] = 1;
      }
      i++;
    }
  }
}

function compare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * Tokens that are plain string text: their bytes, fed to string content from its plain state, come back
 * to it (whole UTF-8 characters, no quote, no \u escape), so inside a string they leave the state as is.
 */
export function plainTokens(bytes: readonly (Uint8Array | null)[]): Uint8Array {
  const out = new Uint8Array(bytes.length);
  bytes.forEach((b, id) => {
    if (!b) return;
    let s = 0;
    for (let i = 0; i < b.length && s >= 0; i++) s = strStep(s, b[i]!, false);
    if (s === 0) out[id] = 1;
  });
  return out;
}
