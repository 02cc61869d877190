// The held-out split of a pre-training run: which tokens no stage may train on. Held-out tokens are either
// the shards listed in `data.validation` (which no stage may train on), or, by default, the last
// documents of every `data.shards` shard: the smallest run of whole documents at the end of the shard
// holding at least `eval.heldout` of its tokens. The loader's windows of such a shard stop where its
// held-out documents begin (PackedLoader `ends`, via loaderEnds), so training never reads them, not even
// as a target. A stage that lists other shard files (annealing's high-quality mix) trains on them whole.
// The split belongs to train (the loader must honour it); scoring the held-out tokens is eval's
// (src/eval/heldout.ts), which train reaches only through the evaluator hook (evaluator.ts).
import { TokenShardReader } from "../data/shards.js";
import type { PretrainConfig } from "./config.js";

export interface EvalConfig {
  /** valLoss every this many steps (0: only at the end of each stage). */
  every: number;
  /** Fraction of each data shard's tokens held out (whole documents from its end); 0 disables. */
  heldout: number;
  /** Tokens scored per validation loss (at most; fewer when the held-out set is smaller). */
  tokens: number;
}

export const DEFAULT_EVAL: EvalConfig = { every: 50, heldout: 0.05, tokens: 4096 };

/** A contiguous piece of held-out tokens: shard `path`, token offsets [start, end). */
export interface HeldoutSpan {
  path: string;
  start: number;
  end: number;
}

export interface HeldoutSet {
  spans: HeldoutSpan[];
  /** Total held-out tokens. */
  tokens: number;
  /** Per training shard path: where its training windows stop (absent: the whole shard trains). */
  trainEnds: Map<string, number>;
}

/** The held-out set of a run (see the file comment); errors name the config field to change. */
export function heldoutSplit(cfg: PretrainConfig): HeldoutSet {
  const trainEnds = new Map<string, number>();
  const spans: HeldoutSpan[] = [];
  const validation = cfg.data.validation ?? [];
  if (validation.length > 0) {
    for (const s of cfg.stages)
      for (const p of s.shards)
        if (validation.includes(p))
          throw new Error(`data.validation: ${p} is also a training shard of stage '${s.name}'`);
    for (const path of validation) {
      const r = new TokenShardReader(path);
      spans.push({ path, start: 0, end: r.numTokens });
      r.close();
    }
  } else if (cfg.eval.heldout > 0) {
    for (const path of new Set(cfg.data.shards)) {
      const r = new TokenShardReader(path);
      const want = Math.ceil(cfg.eval.heldout * r.numTokens);
      let k = r.numDocs;
      while (k > 0 && r.numTokens - r.docStarts[k]! < want) k--;
      const start = r.docStarts[k]!;
      r.close();
      if (k === 0)
        throw new Error(
          `${path}: holding out ${cfg.eval.heldout} of its tokens (eval.heldout) leaves no document to train on`,
        );
      trainEnds.set(path, start);
      spans.push({ path, start, end: r.numTokens });
    }
  }
  return { spans, tokens: spans.reduce((n, s) => n + s.end - s.start, 0), trainEnds };
}

/** The `ends` argument of PackedLoader for these shards. */
export function loaderEnds(set: HeldoutSet, shards: string[]): (number | undefined)[] {
  return shards.map((p) => set.trainEnds.get(p));
}
