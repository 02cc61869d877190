// Needle in a haystack (spec §6.2: a long-context stage is done when the model "perfectly solves
// needle-in-a-haystack up to the current length"). A needle (key + value, e.g. "The secret number is " +
// "7421" + ".") is inserted at a depth of held-out text that fills the context length, the prompt ends
// with a question and the key again, and the model must produce the value. Scored by greedy decoding:
// exact when every value token is the argmax after the prompt and the value tokens before it (one
// forward of the prompt into a KV cache, then one token at a time), with the value's log-probability and
// the rank of its first token beside. The pieces (needle, prompt, scorer, grid, heat map) are plain
// functions so tests can check them against hand-computed cases and a decoder whose behaviour is known.
// Used by the long-context checks (longContext.ts); knows nothing of training runs.
import { argmax } from "../generate/sampling.js";
import { escapeXml as esc } from "../io/xml.js";
import { KVCache } from "../model/kvcache.js";
import type { Llama } from "../model/llama.js";
import { noGrad } from "../tensor/tape.js";
import { scope } from "../tensor/tensor.js";
import { Rng } from "../train/rng.js";

export interface Needle {
  /** Tokens inserted into the haystack: key, value, tail. */
  needle: Int32Array;
  /** Tokens after the haystack: the question, then the key. */
  query: Int32Array;
  /** The value: what the model must produce next. */
  answer: Int32Array;
  /** Human-readable needle (text, or the token ids). */
  text: string;
}

/** Text → token ids (a tokenizer's encode, or UTF-8 bytes for byte-level shards). */
export type Encode = (text: string) => number[];

/** "The secret number is NNNN." with a random 4-digit number; the question asks for it, the answer is NNNN. */
export function textNeedle(encode: Encode, rng: Rng): Needle {
  const n = 1000 + Math.floor(rng.next() * 9000);
  // The space before the number belongs to the key, so the value is the digits alone.
  const key = encode(" The secret number is ");
  const value = encode(String(n));
  return {
    needle: Int32Array.from([...key, ...value, ...encode(".")]),
    query: Int32Array.from([...encode(" What is the secret number?"), ...key]),
    answer: Int32Array.from(value),
    text: `The secret number is ${n}.`,
  };
}

/**
 * A passkey without a tokenizer: a key of `keyLen` and a value of `valueLen` tokens drawn at random from
 * `pool` (ids seen in held-out text, so the model knows them); the query is the key alone.
 */
export function tokenNeedle(pool: Int32Array, rng: Rng, keyLen = 6, valueLen = 4): Needle {
  if (pool.length < 2) throw new Error("token needle: the pool needs at least 2 distinct ids");
  const draw = (n: number) =>
    Int32Array.from({ length: n }, () => pool[Math.floor(rng.next() * pool.length)]!);
  const key = draw(keyLen);
  const value = draw(valueLen);
  return {
    needle: Int32Array.from([...key, ...value]),
    query: key,
    answer: value,
    text: `key [${key.join(" ")}] value [${value.join(" ")}]`,
  };
}

/** Haystack tokens a prompt of context `length` needs around this needle. */
export function haystackLength(n: Needle, length: number): number {
  const fill = length - n.needle.length - n.query.length - (n.answer.length - 1);
  if (fill < 0)
    throw new Error(`needle-in-a-haystack: context ${length} is shorter than the needle and question`);
  return fill;
}

/**
 * The prompt: haystack[0:p] + needle + haystack[p:] + query, with p = round(depth · haystack length)
 * (depth 0: the needle comes first; 1: right before the question). With the value's first tokens fed
 * while scoring, the context the last value token is predicted in has exactly `length` tokens.
 */
export function buildPrompt(
  haystack: Int32Array,
  n: Needle,
  depth: number,
): { prompt: Int32Array; at: number } {
  if (!(depth >= 0 && depth <= 1)) throw new Error(`needle-in-a-haystack: depth ${depth} is not in [0, 1]`);
  const at = Math.round(depth * haystack.length);
  const prompt = new Int32Array(haystack.length + n.needle.length + n.query.length);
  prompt.set(haystack.subarray(0, at), 0);
  prompt.set(n.needle, at);
  prompt.set(haystack.subarray(at), at + n.needle.length);
  prompt.set(n.query, haystack.length + n.needle.length);
  return { prompt, at };
}

/** Next-token logits after a prompt, then after each further token (a model with its KV cache). */
export interface Decoder {
  start(prompt: Int32Array): Float32Array;
  next(token: number): Float32Array;
  close(): void;
}

/** A Llama as a Decoder (noGrad, KV cache sized for the prompt and answer). */
export function llamaDecoder(model: Llama, capacity: number): Decoder {
  return cacheDecoder(model, new KVCache(model.config, 1, capacity));
}

function cacheDecoder(model: Llama, cache: KVCache): Decoder {
  const run = (ids: Int32Array) =>
    noGrad(() => scope(() => model.forward(ids, { cache, logits: "last" }).toArray()));
  return { start: run, next: (t) => run(Int32Array.of(t)), close: () => cache.dispose() };
}

/**
 * Several prompts that begin with one prefix (the multi-needle haystack, asked two questions): each
 * fork's start(rest) scores prefix + rest.
 */
export interface PrefixDecoder {
  /** A decoder continuing after the prefix; `capacity` counts the prefix too. */
  fork(capacity: number): Decoder;
  close(): void;
}

/** The prefix prefilled once into a Llama's KV cache; each fork continues a copy of it. */
export function llamaPrefix(model: Llama, prefix: Int32Array): PrefixDecoder {
  const cache = new KVCache(model.config, 1, prefix.length);
  noGrad(() => scope(() => model.forward(prefix, { cache, logits: "last" })));
  return {
    fork: (capacity) => cacheDecoder(model, cache.selectRows([0], capacity) as KVCache),
    close: () => cache.dispose(),
  };
}

/** The naive way: each fork is a fresh decoder that computes prefix + rest from the start. */
export function replayPrefix(decoder: (capacity: number) => Decoder, prefix: Int32Array): PrefixDecoder {
  return {
    fork(capacity) {
      const d = decoder(capacity);
      return {
        start: (rest) => {
          const all = new Int32Array(prefix.length + rest.length);
          all.set(prefix);
          all.set(rest, prefix.length);
          return d.start(all);
        },
        next: (t) => d.next(t),
        close: () => d.close(),
      };
    },
    close: () => {},
  };
}

export interface Retrieval {
  exact: boolean;
  /** Greedy tokens (the argmax at each value position, teacher-forced on the value). */
  predicted: number[];
  /** Sum of the value tokens' log-probabilities. */
  logProb: number;
  /** Rank of the value's first token among all ids (0 = the argmax). */
  firstRank: number;
}

function logSoftmaxAt(x: Float32Array, i: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of x) if (v > max) max = v;
  let s = 0;
  for (const v of x) s += Math.exp(v - max);
  return x[i]! - max - Math.log(s);
}

/**
 * Score one prompt: exact when the argmax after the prompt is the answer's first token and, feeding the
 * answer, each next argmax is its next token (exactly what greedy decoding would print).
 */
export function scoreRetrieval(d: Decoder, prompt: Int32Array, answer: Int32Array): Retrieval {
  let logits = d.start(prompt);
  const predicted: number[] = [];
  let logProb = 0;
  let firstRank = 0;
  for (let i = 0; i < answer.length; i++) {
    const want = answer[i]!;
    predicted.push(argmax(logits));
    logProb += logSoftmaxAt(logits, want);
    if (i === 0) for (const v of logits) if (v > logits[want]!) firstRank++;
    if (i + 1 < answer.length) logits = d.next(want);
  }
  return { exact: predicted.every((t, i) => t === answer[i]), predicted, logProb, firstRank };
}

export interface NiahCell {
  length: number;
  depth: number;
  trials: number;
  /** Trials retrieved exactly. */
  exact: number;
  meanLogProb: number;
  meanFirstRank: number;
}

export interface NiahOptions {
  lengths: number[];
  depths: number[];
  trials: number;
  seed: number;
  /** A needle for a trial (drawn from the rng). */
  needle: (rng: Rng) => Needle;
  /** `count` haystack tokens for a trial (drawn from the rng). */
  haystack: (rng: Rng, count: number) => Int32Array;
  /** A decoder for a prompt of `capacity` tokens. */
  decoder: (capacity: number) => Decoder;
}

/** Every length × depth cell, `trials` needles each. */
export function niahGrid(o: NiahOptions): NiahCell[] {
  const cells: NiahCell[] = [];
  for (const length of o.lengths)
    o.depths.forEach((depth, di) => {
      const cell: NiahCell = { length, depth, trials: o.trials, exact: 0, meanLogProb: 0, meanFirstRank: 0 };
      for (let t = 0; t < o.trials; t++) {
        const rng = new Rng(o.seed * 7919 + length * 131 + di * 17 + t);
        const n = o.needle(rng);
        const { prompt } = buildPrompt(o.haystack(rng, haystackLength(n, length)), n, depth);
        const d = o.decoder(prompt.length + n.answer.length);
        try {
          const r = scoreRetrieval(d, prompt, n.answer);
          if (r.exact) cell.exact++;
          cell.meanLogProb += r.logProb / o.trials;
          cell.meanFirstRank += r.firstRank / o.trials;
        } finally {
          d.close();
        }
      }
      cells.push(cell);
    });
  return cells;
}

/** The usual NIAH picture: context length across, needle depth down, each cell coloured by accuracy. */
export function niahHeatmapSvg(cells: NiahCell[], title: string): string {
  const lengths = [...new Set(cells.map((c) => c.length))].sort((a, b) => a - b);
  const depths = [...new Set(cells.map((c) => c.depth))].sort((a, b) => a - b);
  const cw = 72;
  const ch = 28;
  const left = 64;
  const top = 40;
  const W = Math.max(left + cw * lengths.length + 16, 440);
  const H = top + ch * depths.length + 44;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="16" text-anchor="middle" font-size="13">${esc(title)}</text>`,
    `<text x="12" y="${top - 8}">depth</text>`,
  ];
  for (const c of cells) {
    const x = left + cw * lengths.indexOf(c.length);
    const y = top + ch * depths.indexOf(c.depth);
    const acc = c.trials > 0 ? c.exact / c.trials : 0;
    // red (0) → yellow → green (1)
    const r = Math.round(acc < 0.5 ? 215 : 215 - (acc - 0.5) * 2 * 175);
    const g = Math.round(acc < 0.5 ? 48 + acc * 2 * 167 : 215 - (acc - 0.5) * 2 * 40);
    out.push(
      `<rect class="cell" x="${x}" y="${y}" width="${cw - 2}" height="${ch - 2}" fill="rgb(${r},${g},60)"><title>length ${c.length}, depth ${c.depth}: ${c.exact}/${c.trials} exact, mean log p ${c.meanLogProb.toFixed(2)}</title></rect>`,
      `<text x="${x + (cw - 2) / 2}" y="${y + ch / 2 + 3}" text-anchor="middle">${c.exact}/${c.trials}</text>`,
    );
  }
  for (const [i, d] of depths.entries())
    out.push(
      `<text x="${left - 6}" y="${top + ch * i + ch / 2 + 3}" text-anchor="end">${Math.round(d * 100)}%</text>`,
    );
  for (const [i, l] of lengths.entries())
    out.push(
      `<text x="${left + cw * i + (cw - 2) / 2}" y="${top + ch * depths.length + 14}" text-anchor="middle">${l}</text>`,
    );
  out.push(
    `<text x="${left + (cw * lengths.length) / 2}" y="${H - 8}" text-anchor="middle">context length (tokens)</text>`,
    "</svg>",
  );
  return `${out.join("\n")}\n`;
}
