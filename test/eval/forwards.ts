// Counts a model's forward passes for tests that prove work is shared (a prefix prefilled once, a batch
// decoded together): each call's token count, batch and how many tokens its KV cache already held.
// The counter wraps the model's own forward and changes nothing it computes.
import type { Llama } from "../../src/model/index.js";

export interface ForwardCall {
  /** Ids in the call (batch × sequence). */
  tokens: number;
  batch: number;
  /** Tokens the call's cache held before it (-1: no cache). */
  cached: number;
}

/** Records every forward of `model` from now on into the returned list. */
export function countForwards(model: Llama): ForwardCall[] {
  const calls: ForwardCall[] = [];
  const forward = model.forward.bind(model);
  model.forward = (ids, opts = {}) => {
    calls.push({ tokens: ids.length, batch: opts.batch ?? 1, cached: opts.cache?.length ?? -1 });
    return forward(ids, opts);
  };
  return calls;
}

/** Tokens computed over all calls. */
export const tokensOf = (calls: readonly ForwardCall[]) => calls.reduce((a, c) => a + c.tokens, 0);
