// The validation loss of a pre-training run over its held-out tokens (the split itself is train's:
// src/train/heldoutSplit.ts). The validation loss is the token-weighted mean next-token loss over windows
// of the held-out tokens at a given sequence length, with the document mask (a window's documents attend
// only to themselves and targets in the next document are skipped, as in training), under noGrad. The
// windows are spread evenly over the held-out tokens and are the same every time, so values at one
// length are comparable. evaluateStep is the periodic part of the trainer's evaluator hook
// (pretrainEvaluator.ts); nothing here changes the weights, so a run with or without it trains alike.
import { TokenShardReader } from "../data/shards.js";
import type { Llama } from "../model/llama.js";
import { noGrad } from "../tensor/tape.js";
import { scope } from "../tensor/tensor.js";
import type { PretrainConfig, StageConfig } from "../train/config.js";
import type { HeldoutSet, HeldoutSpan } from "../train/heldoutSplit.js";
import { type Batch, fillWindow } from "../train/loader.js";
import type { StepMetrics } from "../train/metrics.js";

/**
 * `count` consecutive held-out tokens starting at `offset` of the held-out stream (the spans one after
 * another), for haystacks.
 */
export function heldoutTokens(set: HeldoutSet, offset: number, count: number): Int32Array {
  if (offset < 0 || offset + count > set.tokens)
    throw new Error(
      `held-out set: ${count} tokens from ${offset} asked, it holds ${set.tokens} (raise eval.heldout)`,
    );
  const out = new Int32Array(count);
  let at = 0;
  let base = 0;
  for (const s of set.spans) {
    const n = s.end - s.start;
    const from = Math.max(offset + at - base, 0);
    if (at < count && from < n) {
      const take = Math.min(n - from, count - at);
      const r = new TokenShardReader(s.path);
      out.set(r.tokens(s.start + from, take), at);
      r.close();
      at += take;
    }
    base += n;
  }
  return out;
}

/**
 * Up to `maxTokens / seqLen` windows of seqLen+1 held-out tokens (never crossing a span), spread evenly
 * over all such windows (the first and the last included), as training-style rows: ids, targets (−100 where the next token is in another
 * document), document ids numbered from 0 in each row.
 */
export function heldoutWindows(set: HeldoutSet, seqLen: number, maxTokens: number): Batch {
  const all: { span: HeldoutSpan; start: number }[] = [];
  for (const span of set.spans)
    for (let start = span.start; start + seqLen + 1 <= span.end; start += seqLen) all.push({ span, start });
  if (all.length === 0)
    throw new Error(
      `held-out set of ${set.tokens} tokens has no window of ${seqLen + 1} tokens in one shard (raise eval.heldout or add data.validation shards)`,
    );
  const n = Math.min(all.length, Math.max(1, Math.floor(maxTokens / seqLen)));
  const T = seqLen;
  const ids = new Int32Array(n * T);
  const targets = new Int32Array(n * T);
  const docIds = new Int32Array(n * T);
  const readers = new Map<string, TokenShardReader>();
  try {
    for (let b = 0; b < n; b++) {
      const w = all[n === 1 ? 0 : Math.round((b * (all.length - 1)) / (n - 1))]!;
      let r = readers.get(w.span.path);
      if (!r) {
        r = new TokenShardReader(w.span.path);
        readers.set(w.span.path, r);
      }
      fillWindow(r, w.start, T, ids, targets, docIds, b * T);
    }
  } finally {
    for (const r of readers.values()) r.close();
  }
  return { ids, targets, docIds, batch: n, seqLen: T };
}

/** Token-weighted mean loss of `model` over held-out windows of `seqLen` (noGrad, document mask). */
export function validationLoss(
  model: Llama,
  set: HeldoutSet,
  seqLen: number,
  maxTokens: number,
  rowsPerPass = 4,
): number {
  const w = heldoutWindows(set, seqLen, maxTokens);
  const T = w.seqLen;
  let sum = 0;
  let count = 0;
  for (let b0 = 0; b0 < w.batch; b0 += rowsPerPass) {
    const rows = Math.min(rowsPerPass, w.batch - b0);
    const part = (a: Int32Array) => a.subarray(b0 * T, (b0 + rows) * T);
    const targets = part(w.targets);
    const n = targets.reduce((k, t) => k + (t === -100 ? 0 : 1), 0);
    if (n === 0) continue;
    const loss = noGrad(() =>
      scope(() => model.loss(part(w.ids), targets, { batch: rows, docIds: part(w.docIds) }).item()),
    );
    sum += loss * n;
    count += n;
  }
  if (count === 0) throw new Error(`held-out windows of ${seqLen} tokens hold no target`);
  return sum / count;
}

/**
 * The trainer's hook after a step: every `eval.every` steps and at the end of each stage, the validation
 * loss at the stage's sequence length goes into the step's metrics (valLoss, valSeqLen).
 */
export function evaluateStep(
  model: Llama,
  cfg: PretrainConfig,
  set: HeldoutSet,
  stage: StageConfig,
  m: StepMetrics,
  stageEnd: boolean,
): void {
  if (set.spans.length === 0) return;
  if (!(stageEnd || (cfg.eval.every > 0 && m.step % cfg.eval.every === 0))) return;
  m.valLoss = validationLoss(model, set, stage.seqLen, cfg.eval.tokens, stage.microBatch);
  m.valSeqLen = stage.seqLen;
}
