// Perplexity of a model on a token sequence: how well it predicts held-out text, the number that says
// how much quantising a model's weights (src/model/quantize.ts) cost. The ids are cut into windows of
// `context` positions; each window starts with BOS (when the model has one) and scores every text token
// in it from the tokens before it in the same window, so each text token is scored exactly once.
// perplexity = exp(mean negative log-likelihood), natural log.
import type { Llama } from "../model/llama.js";
import { noGrad } from "../tensor/tape.js";
import { scope } from "../tensor/tensor.js";

export interface PerplexityOptions {
  /** Positions per window, BOS included (default: the model's context, at most 512). */
  context?: number;
  /** Prepend this id to every window (default: the config's BOS; null for none). */
  bos?: number | null;
  /** Called after each window with the tokens scored so far. */
  onWindow?: (scored: number, total: number) => void;
}

export interface PerplexityResult {
  perplexity: number;
  /** Mean negative log-likelihood per scored token (nats). */
  nll: number;
  /** Text tokens scored. */
  tokens: number;
  windows: number;
}

export function perplexity(
  model: Llama,
  ids: ArrayLike<number>,
  opts: PerplexityOptions = {},
): PerplexityResult {
  const c = model.config;
  const bos = opts.bos === undefined ? c.bosTokenId : opts.bos;
  const context = opts.context ?? Math.min(512, c.maxPositionEmbeddings);
  const lead = bos === null ? 0 : 1;
  if (!(Number.isInteger(context) && context >= lead + 2))
    throw new Error(`perplexity: context ${context} must be an integer ≥ ${lead + 2}`);
  if (context > c.maxPositionEmbeddings)
    throw new Error(`perplexity: context ${context} is longer than the model's ${c.maxPositionEmbeddings}`);
  for (let i = 0; i < ids.length; i++)
    if (!(Number.isInteger(ids[i]) && ids[i]! >= 0 && ids[i]! < c.vocabSize))
      throw new Error(
        `perplexity: id ${ids[i]} at position ${i} is outside the vocabulary of ${c.vocabSize}`,
      );
  // Without BOS the first token of a window has no prediction: windows then overlap by one token.
  const step = context - lead - (lead ? 0 : 1);
  let total = 0;
  let scored = 0;
  let windows = 0;
  for (let s = 0; s + (lead ? 0 : 1) < ids.length; s += step) {
    const text = Array.from({ length: Math.min(ids.length - s, context - lead) }, (_, i) => ids[s + i]!);
    const win = Int32Array.from(lead ? [bos!, ...text] : text);
    const targets = new Int32Array(win.length).fill(-100);
    // Predict win[t+1] at position t; without BOS the first token was scored by the previous window.
    for (let t = 0; t + 1 < win.length; t++) targets[t] = win[t + 1]!;
    const n = win.length - 1; // ≥ 1: the loop condition leaves at least one token to predict
    const mean = noGrad(() => scope(() => model.loss(win, targets).item()));
    total += mean * n;
    scored += n;
    windows++;
    opts.onWindow?.(scored, ids.length - (lead ? 0 : 1));
  }
  if (scored === 0) throw new Error("perplexity: no tokens to score (the text is too short)");
  const nll = total / scored;
  return { perplexity: Math.exp(nll), nll, tokens: scored, windows };
}
