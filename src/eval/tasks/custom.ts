// Tasks that run the model themselves rather than through requests: `perplexity` (token perplexity and
// bits per byte of a held-out text, the code `herd perplexity` runs) and `niah` (needle in a haystack over
// a grid of context lengths and depths, niah.ts's scorer, with its heat map; and the paper's multi-needle
// recall, four needles and two asked for, at the same lengths). Both read the text given
// as --text (niah: the haystack; without one, a neutral filler sentence repeated).
import { existsSync, readFileSync } from "node:fs";
import { Rng } from "../../core/rng.js";
import type { TextCodec } from "../../generate/codec.js";
import type { Llama } from "../../model/llama.js";
import {
  type Encode,
  llamaDecoder,
  llamaPrefix,
  type Needle,
  niahGrid,
  niahHeatmapSvg,
  type PrefixDecoder,
  type Retrieval,
  scoreRetrieval,
  textNeedle,
} from "../niah.js";
import { perplexity } from "../perplexity.js";

export interface CustomContext {
  codec: TextCodec;
  /** A UTF-8 text file (perplexity: required; niah: the haystack). */
  textFile?: string;
  /** niah: trials per cell (default 1); --limit. */
  limit?: number;
}

export interface CustomResult {
  row: Record<string, number | string>;
  /** Files to write beside the results (name → content). */
  files: Record<string, string>;
  nSamples: number;
}

export interface CustomTaskSpec {
  name: string;
  summary: string;
  custom: true;
  run(model: Llama, ctx: CustomContext): CustomResult;
}

function text(ctx: CustomContext, task: string): string | null {
  if (!ctx.textFile) return null;
  if (!existsSync(ctx.textFile)) throw new Error(`${ctx.textFile}: file is missing (--text, task ${task})`);
  return readFileSync(ctx.textFile, "utf8");
}

export const perplexityTask: CustomTaskSpec = {
  name: "perplexity",
  summary: "token perplexity and bits per byte of --text FILE",
  custom: true,
  run(model, ctx) {
    const t = text(ctx, "perplexity");
    if (t === null) throw new Error("task perplexity needs --text FILE (held-out text)");
    const ids = ctx.codec.encode!(t);
    const r = perplexity(model, ids);
    const bytes = Buffer.byteLength(t, "utf8");
    return {
      row: {
        alias: "perplexity",
        "perplexity,none": r.perplexity,
        "nll,none": r.nll,
        "bits_per_byte,none": (r.nll * r.tokens) / Math.LN2 / bytes,
        "tokens,none": r.tokens,
      },
      files: {},
      nSamples: r.windows,
    };
  },
};

/** "The secret number of NAME is NNNN." — one of several needles told apart by their names. */
function namedNeedle(encode: Encode, rng: Rng, name: string): Needle {
  const n = 1000 + Math.floor(rng.next() * 9000);
  const key = encode(` The secret number of ${name} is `);
  const value = encode(String(n));
  return {
    needle: Int32Array.from([...key, ...value, ...encode(".")]),
    query: Int32Array.from([...encode(` What is the secret number of ${name}?`), ...key]),
    answer: Int32Array.from(value),
    text: `The secret number of ${name} is ${n}.`,
  };
}

const NAMES = ["Alice", "Bruno", "Chen", "Dalia"];

/**
 * The paper's multi-needle test (spec §10.2): four needles at random depths of one haystack, two of them
 * asked for (each its own question after the same haystack, which `prefixed` computes once: llamaPrefix
 * prefills it into one KV cache and both questions continue a copy; replayPrefix is the naive way).
 * Each trial's two retrievals, or null when the length is too short for four needles.
 */
export function multiNeedle(
  prefixed: (haystack: Int32Array) => PrefixDecoder,
  encode: Encode,
  haystack: (rng: Rng, count: number) => Int32Array,
  length: number,
  trials: number,
): Retrieval[][] | null {
  const out: Retrieval[][] = [];
  for (let t = 0; t < trials; t++) {
    const rng = new Rng(9173 * length + t);
    const needles = NAMES.map((n) => namedNeedle(encode, rng, n));
    const first = Math.floor(rng.next() * 4);
    const asked = [first, (first + 1 + Math.floor(rng.next() * 3)) % 4];
    const extra = Math.max(...asked.map((i) => needles[i]!.query.length + needles[i]!.answer.length - 1));
    const fill = length - needles.reduce((a, n) => a + n.needle.length, 0) - extra;
    if (fill < length / 4) return null; // too short for four needles to sit in a haystack
    const hay = [...haystack(rng, fill)];
    // Positions after the BOS, inserted from the back so earlier ones stay where they were drawn.
    const at = NAMES.map(() => 1 + Math.floor(rng.next() * (hay.length - 1))).sort((a, b) => b - a);
    for (const [i, p] of at.entries()) hay.splice(p, 0, ...needles[i]!.needle);
    const shared = prefixed(Int32Array.from(hay));
    try {
      out.push(
        asked.map((i) => {
          const d = shared.fork(hay.length + needles[i]!.query.length + needles[i]!.answer.length);
          try {
            return scoreRetrieval(d, needles[i]!.query, needles[i]!.answer);
          } finally {
            d.close();
          }
        }),
      );
    } finally {
      shared.close();
    }
  }
  return out;
}

/** Recall of multiNeedle: the share of the asked values retrieved exactly (null: too short). */
export function multiNeedleRecall(
  prefixed: (haystack: Int32Array) => PrefixDecoder,
  encode: Encode,
  haystack: (rng: Rng, count: number) => Int32Array,
  length: number,
  trials: number,
): number | null {
  const r = multiNeedle(prefixed, encode, haystack, length, trials);
  if (r === null) return null;
  return r.flat().filter((x) => x.exact).length / (2 * trials);
}

const FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";

export const niahTask: CustomTaskSpec = {
  name: "niah",
  summary:
    "needle in a haystack: single (lengths × depths, heat map niah.svg) and 4 needles, 2 asked (recall)",
  custom: true,
  run(model, ctx) {
    const encode = ctx.codec.encode!;
    const hay = Int32Array.from(encode((text(ctx, "niah") ?? FILLER.repeat(400)).slice(0, 400_000)));
    const max = Math.min(model.config.maxPositionEmbeddings, hay.length, 8192);
    const lengths = [0.25, 0.5, 0.75, 1].map((f) => Math.max(64, Math.floor(max * f)));
    const bos = model.config.bosTokenId;
    const haystack = (rng: Rng, count: number) => {
      const start = Math.floor(rng.next() * Math.max(1, hay.length - count));
      const h = hay.subarray(start, start + count);
      return bos === null ? h : Int32Array.from([bos, ...h.subarray(1)]);
    };
    const cells = niahGrid({
      lengths: [...new Set(lengths)],
      depths: [0, 0.25, 0.5, 0.75, 1],
      trials: ctx.limit ?? 1,
      seed: 0,
      needle: (rng: Rng) => textNeedle(encode, rng),
      haystack,
      decoder: (capacity: number) => llamaDecoder(model, capacity),
    });
    const recalls = [...new Set(lengths)]
      .map((l) => multiNeedleRecall((h) => llamaPrefix(model, h), encode, haystack, l, ctx.limit ?? 1))
      .filter((r) => r !== null);
    const trials = cells.reduce((a, c) => a + c.trials, 0);
    const exact = cells.reduce((a, c) => a + c.exact, 0);
    const title = `needle in a haystack: ${exact}/${trials} exact`;
    return {
      row: {
        alias: "niah",
        "acc,single": exact / trials,
        "trials,single": trials,
        "recall,multi": recalls.length ? recalls.reduce((a, b) => a + b, 0) / recalls.length : "N/A",
      },
      files: { "niah.svg": niahHeatmapSvg(cells, title) },
      nSamples: trials,
    };
  },
};
