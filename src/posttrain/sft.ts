// Supervised fine-tuning (spec §7.1–7.2): cross-entropy on the assistant tokens only — each assistant
// turn's content and its <|eot_id|>/<|eom_id|>, so the model learns to stop (render.ts's tags) — with the
// prompt, system, tool output and headers masked. Dialogs are packed several to a row (a document each:
// attention stays inside it and RoPE positions restart), rows are the loop's items. The loss of a step
// is the sum over its supervised tokens divided by their count in the whole step, so it is the same
// however the step is split into micro-batches or packed. A step (or a dialog) with no supervised token
// is a hard error, not a run that trains on nothing.
import { createHash } from "node:crypto";
import { Rng } from "../core/rng.js";
import type { Llama } from "../model/llama.js";
import { backward, noGrad } from "../tensor/tape.js";
import { scope } from "../tensor/tensor.js";
import type { SftConfig } from "./config.js";
import type { SftExample } from "./data.js";
import { type LoopOptions, trainLoop } from "./loop.js";
import { type PackedRows, pack, packRows } from "./pack.js";

/** Dialogs in a seeded order, grouped into rows of at most seqLen tokens (the loop shuffles the rows). */
export function packDialogs(examples: readonly SftExample[], seqLen: number, seed: number): SftExample[][] {
  const order = [...new Rng(seed ^ 0x5f7).permutation(examples.length)].map((i) => examples[i]!);
  const rowOf = packRows(
    order.map((e) => e.ids.length),
    seqLen,
  );
  const rows: SftExample[][] = [];
  order.forEach((e, i) => {
    (rows[rowOf[i]!] ??= []).push(e);
  });
  return rows;
}

/** sha256 of the dialogs' ids and masks and the row length (a resume must see the same). */
export function sftHash(data: readonly SftExample[], seqLen: number): string {
  const h = createHash("sha256").update(`seq ${seqLen}\n`);
  for (const e of data)
    for (const a of [e.ids, e.supervised])
      h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).update("|");
  return h.digest("hex");
}

/** The packed forward inputs of some rows' dialogs. */
export function packExamples(rows: readonly SftExample[][], seqLen: number): PackedRows {
  return pack(
    rows.flat().map((e) => ({ ids: e.ids, trained: e.supervised })),
    seqLen,
  );
}

function supervisedCount(b: PackedRows): number {
  let n = 0;
  for (const t of b.targets) if (t !== -100) n++;
  return n;
}

/**
 * Gradients of one step into the parameters' .grad: each micro-batch's mean loss is back-propagated with
 * weight (its supervised tokens / the step's), so the result is the gradient of the step's token mean.
 */
export function sftStep(
  model: Llama,
  micro: readonly PackedRows[],
): { loss: number; supervised: number; tokens: number } {
  const counts = micro.map(supervisedCount);
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0)
    throw new Error("sft: a step with zero supervised tokens (no assistant token to train on)");
  let sum = 0;
  micro.forEach((b, i) => {
    if (counts[i] === 0) return;
    scope(() => {
      const loss = model.loss(b.ids, b.targets, { batch: b.batch, docIds: b.docIds, resetPositions: true });
      sum += loss.item() * counts[i]!;
      backward(loss, Float32Array.of(counts[i]! / total));
    });
  });
  return { loss: sum / total, supervised: total, tokens: micro.reduce((n, b) => n + b.ids.length, 0) };
}

/** Micro-batches of `micro` rows each. */
function microBatches(rows: SftExample[][], micro: number, seqLen: number): PackedRows[] {
  const out: PackedRows[] = [];
  for (let i = 0; i < rows.length; i += micro) out.push(packExamples(rows.slice(i, i + micro), seqLen));
  return out;
}

export interface SftRun {
  runDir: string;
  model: Llama;
  data: readonly SftExample[];
  /** lr and seq-len resolved (config.ts's resolveLR / resolveSeqLen). */
  cfg: SftConfig & { lr: number; "seq-len": number };
}

/** Run (or resume) SFT in runDir. */
export async function sft(run: SftRun, opts: LoopOptions = {}) {
  const { model, cfg } = run;
  const seqLen = cfg["seq-len"];
  const rows = packDialogs(run.data, seqLen, cfg.seed);
  return trainLoop(
    {
      runDir: run.runDir,
      model,
      cfg,
      items: rows,
      fingerprint: sftHash(run.data, seqLen),
      step: (batch) => {
        const r = sftStep(model, microBatches(batch, cfg["micro-batch"], seqLen));
        return { loss: r.loss, tokens: r.tokens, metrics: { supervisedTokens: r.supervised } };
      },
    },
    opts,
  );
}

/** The SFT loss of a model over a dataset (token mean over every supervised token), without training. */
export function sftEvaluate(
  model: Llama,
  data: readonly SftExample[],
  seqLen: number,
  micro = 8,
): { loss: number; supervisedTokens: number; dialogs: number } {
  const rows = packDialogs(data, seqLen, 0);
  let sum = 0;
  let n = 0;
  for (const b of microBatches(rows, micro, seqLen)) {
    const c = supervisedCount(b);
    if (c === 0) continue;
    noGrad(() =>
      scope(() => {
        sum +=
          model.loss(b.ids, b.targets, { batch: b.batch, docIds: b.docIds, resetPositions: true }).item() * c;
      }),
    );
    n += c;
  }
  if (n === 0) throw new Error("sft evaluate: zero supervised tokens in the data");
  return { loss: sum / n, supervisedTokens: n, dialogs: data.length };
}
