// Generated corpora for the data tests and benchmark: random-word documents from a fixed vocabulary, with
// planted exact and near duplicates whose true shingle Jaccard similarity is computed exactly.
import type { Document } from "../../src/data/document.js";
import { rng } from "../helpers.js";

export function vocabulary(size: number, seed: number): string[] {
  const r = rng(seed);
  const letters = "abcdefghijklmnopqrstuvwxyz";
  const out = new Set<string>();
  while (out.size < size) {
    const len = 3 + Math.floor(r() * 7);
    let w = "";
    for (let i = 0; i < len; i++) w += letters[Math.floor(r() * 26)];
    out.add(w);
  }
  return [...out];
}

export function randomWords(vocab: string[], n: number, r: () => number): string[] {
  return Array.from({ length: n }, () => vocab[Math.floor(r() * vocab.length)]!);
}

/** Exact Jaccard similarity of two word lists' sets of `s`-word shingles. */
export function shingleJaccard(a: string[], b: string[], s: number): number {
  const set = (w: string[]) => {
    const out = new Set<string>();
    for (let i = 0; i + s <= w.length; i++) out.add(w.slice(i, i + s).join(" "));
    return out;
  };
  const A = set(a);
  const B = set(b);
  let inter = 0;
  for (const x of A) if (B.has(x)) inter++;
  return inter / (A.size + B.size - inter);
}

export interface PlantedCorpus {
  docs: Document[];
  words: string[][];
  /** Group of each document: documents in one group are copies/edits of one base. */
  group: number[];
}

/**
 * `distinct` unrelated documents, `exact` groups of 3 identical copies, and `near` base+variant pairs where
 * the variant replaces a random fraction of words (fractions spread over `editRates`).
 */
export function plantedCorpus(opts: {
  distinct: number;
  exact: number;
  near: number;
  words: number;
  seed: number;
  editRates: number[];
}): PlantedCorpus {
  const r = rng(opts.seed);
  const vocab = vocabulary(20000, opts.seed + 1);
  const words: string[][] = [];
  const group: number[] = [];
  let g = 0;
  for (let i = 0; i < opts.distinct; i++) {
    words.push(randomWords(vocab, opts.words, r));
    group.push(g++);
  }
  for (let i = 0; i < opts.exact; i++) {
    const w = randomWords(vocab, opts.words, r);
    for (let c = 0; c < 3; c++) {
      words.push(w);
      group.push(g);
    }
    g++;
  }
  for (let i = 0; i < opts.near; i++) {
    const base = randomWords(vocab, opts.words, r);
    const rate = opts.editRates[i % opts.editRates.length]!;
    const variant = base.map((w) => (r() < rate ? vocab[Math.floor(r() * vocab.length)]! : w));
    words.push(base, variant);
    group.push(g, g);
    g++;
  }
  // Shuffle so duplicates are not adjacent.
  const order = words.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const w2 = order.map((i) => words[i]!);
  const g2 = order.map((i) => group[i]!);
  const docs = w2.map((w, i) => ({ id: `doc${i}`, text: w.join(" "), meta: {} }));
  return { docs, words: w2, group: g2 };
}
