// Tasks that run the model themselves rather than through requests: `perplexity` (token perplexity and
// bits per byte of a held-out text, the code `herd perplexity` runs) and `niah` (needle in a haystack over
// a grid of context lengths and depths, niah.ts's scorer, with its heat map). Both read the text given
// as --text (niah: the haystack; without one, a neutral filler sentence repeated).
import { existsSync, readFileSync } from "node:fs";
import type { Rng } from "../../core/rng.js";
import type { TextCodec } from "../../generate/codec.js";
import type { Llama } from "../../model/llama.js";
import { llamaDecoder, niahGrid, niahHeatmapSvg, textNeedle } from "../niah.js";
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

const FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";

export const niahTask: CustomTaskSpec = {
  name: "niah",
  summary: "needle in a haystack over context lengths × depths (acc; heat map niah.svg)",
  custom: true,
  run(model, ctx) {
    const encode = ctx.codec.encode!;
    const hay = Int32Array.from(encode((text(ctx, "niah") ?? FILLER.repeat(400)).slice(0, 400_000)));
    const max = Math.min(model.config.maxPositionEmbeddings, hay.length, 8192);
    const lengths = [0.25, 0.5, 0.75, 1].map((f) => Math.max(64, Math.floor(max * f)));
    const bos = model.config.bosTokenId;
    const cells = niahGrid({
      lengths: [...new Set(lengths)],
      depths: [0, 0.25, 0.5, 0.75, 1],
      trials: ctx.limit ?? 1,
      seed: 0,
      needle: (rng: Rng) => textNeedle(encode, rng),
      haystack: (rng: Rng, count: number) => {
        const start = Math.floor(rng.next() * Math.max(1, hay.length - count));
        const h = hay.subarray(start, start + count);
        return bos === null ? h : Int32Array.from([bos, ...h.subarray(1)]);
      },
      decoder: (capacity: number) => llamaDecoder(model, capacity),
    });
    const trials = cells.reduce((a, c) => a + c.trials, 0);
    const exact = cells.reduce((a, c) => a + c.exact, 0);
    const title = `needle in a haystack: ${exact}/${trials} exact`;
    return {
      row: { alias: "niah", "acc,none": exact / trials, "trials,none": trials },
      files: { "niah.svg": niahHeatmapSvg(cells, title) },
      nSamples: trials,
    };
  },
};
