// The reward model (spec §7.2.1): the base model with a scalar head — `score.weight` [1, hiddenSize],
// no bias, the name and shape of HF's LlamaForSequenceClassification with num_labels 1 — applied to the
// final normed hidden state at the last token of each response (its <|eot_id|>). The loss is the
// pairwise −log σ(r_better − r_worse) without the Llama 2 margin term; a pair with an edited response
// gives the orderings edited > chosen > rejected (3 pairs), otherwise chosen > rejected. The loss is the
// mean over the step's orderings (exact under accumulation); accuracy is the share of orderings scored
// the right way round. Saved as an HF directory: config.json with architectures
// ["LlamaForSequenceClassification"] and num_labels 1, the weights plus score.weight. As rejection
// sampling's scorer (rewardScorer), a completion is rendered as training rendered a response — the
// prompt's messages as context, the completion as one assistant turn — and read at its <|eot_id|>.
import { join } from "node:path";
import { Rng } from "../core/rng.js";
import { readHFCheckpoint, writeHFCheckpoint } from "../model/checkpoint/hf.js";
import { SafetensorsFile, writeSafetensors } from "../model/checkpoint/safetensors.js";
import { fromHFConfig, toHFConfig } from "../model/config.js";
import { Llama } from "../model/llama.js";
import { embedding, linear, reshape } from "../tensor/ops.js";
import { assign } from "../tensor/optim.js";
import { backward, noGrad } from "../tensor/tape.js";
import { parameter, scope, type Tensor } from "../tensor/tensor.js";
import type { ChatFormat, Message } from "../tokenizer/chat.js";
import type { RmConfig } from "./config.js";
import type { PreferenceExample } from "./data.js";
import { dataHash, logSigmoid, responseSequence, sigmoid } from "./dpo.js";
import { type LoopOptions, trainLoop } from "./loop.js";
import { pack } from "./pack.js";
import type { ScoreFn } from "./rejectionSampling.js";
import { renderPrompt, renderResponse } from "./render.js";

export const SCORE = "score.weight";
/** The head's file in a checkpoint folder (the loop's extra state). */
const HEAD_STATE = "score.safetensors";

export interface RewardModel {
  base: Llama;
  /** score.weight [1, hiddenSize]. */
  head: Tensor;
}

/** A fresh head over `base`: N(0, 1/hiddenSize) entries, seeded. */
export function withRewardHead(base: Llama, seed = 0): RewardModel {
  const d = base.config.hiddenSize;
  const rng = new Rng(seed ^ 0x5c0e);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const head = parameter(
    Float32Array.from({ length: d }, () => gauss() / Math.sqrt(d)),
    [1, d],
    SCORE,
  ).keep();
  return { base, head };
}

/** The responses of a pair, best first, and the orderings (better, worse) among them. */
export function orderings(p: PreferenceExample): {
  responses: PreferenceExample["chosen"][];
  pairs: [number, number][];
} {
  if (p.edited)
    return {
      responses: [p.edited, p.chosen, p.rejected],
      pairs: [
        [0, 1],
        [0, 2],
        [1, 2],
      ],
    };
  return { responses: [p.chosen, p.rejected], pairs: [[0, 1]] };
}

/** Rewards of prompt + response sequences (one forward, packed): a [n, 1] tensor. */
function scores(rm: RewardModel, seqs: ReturnType<typeof responseSequence>[], seqLen: number): Tensor {
  const b = pack(seqs, seqLen);
  const h = rm.base.forward(b.ids, {
    batch: b.batch,
    docIds: b.docIds,
    resetPositions: true,
    output: "hidden",
  });
  const last = Int32Array.from(seqs, (s, i) => b.starts[i]! + s.ids.length - 1);
  const x = embedding(reshape(h, [b.ids.length, rm.base.config.hiddenSize]), last, [seqs.length]);
  return linear(x, rm.head);
}

/** The reward of `completion` as the assistant's reply to `prompt` (no gradients). */
export function rewardOf(
  rm: RewardModel,
  chat: ChatFormat,
  prompt: readonly Message[],
  completion: string,
): number {
  const p = renderPrompt(chat, prompt).ids;
  const r = renderResponse(chat, [{ role: "assistant", content: completion }]).ids;
  const ids = Int32Array.from([...p, ...r]);
  const limit = rm.base.config.maxPositionEmbeddings;
  if (ids.length > limit)
    throw new Error(`reward model: prompt and completion are ${ids.length} tokens, its context ${limit}`);
  return noGrad(() =>
    scope(() => scores(rm, [{ ids, trained: new Uint8Array(ids.length) }], ids.length).data[0]!),
  );
}

/** Rejection sampling's score function from a reward model (rewardOf; −∞, never kept, past its context). */
export function rewardScorer(rm: RewardModel, chat: ChatFormat): ScoreFn {
  const limit = rm.base.config.maxPositionEmbeddings;
  return (prompt, completion) => {
    const n =
      renderPrompt(chat, prompt).ids.length +
      renderResponse(chat, [{ role: "assistant", content: completion }]).ids.length;
    return n > limit ? Number.NEGATIVE_INFINITY : rewardOf(rm, chat, prompt, completion);
  };
}

/** One step (or, with train false, an evaluation) over pairs `idx`: mean pairwise loss, accuracy. */
export function rmStep(
  rm: RewardModel,
  data: readonly PreferenceExample[],
  idx: readonly number[],
  seqLen: number,
  micro: number,
  train = true,
): { loss: number; tokens: number; metrics: Record<string, number> } {
  const total = idx.reduce((n, i) => n + orderings(data[i]!).pairs.length, 0);
  let loss = 0;
  let right = 0;
  let tokens = 0;
  for (let i = 0; i < idx.length; i += micro) {
    const chunk = idx.slice(i, i + micro).map((k) => data[k]!);
    const run = () =>
      scope(() => {
        const seqs: ReturnType<typeof responseSequence>[] = [];
        const pairs: [number, number][] = [];
        for (const p of chunk) {
          const o = orderings(p);
          const base = seqs.length;
          for (const r of o.responses) seqs.push(responseSequence(p.prompt, r));
          for (const [b, w] of o.pairs) pairs.push([base + b, base + w]);
        }
        tokens += seqs.reduce((n, s) => n + s.ids.length, 0);
        const r = scores(rm, seqs, seqLen);
        const v = r.data;
        const g = new Float32Array(v.length);
        for (const [b, w] of pairs) {
          const d = v[b]! - v[w]!;
          loss -= logSigmoid(d) / total;
          if (d > 0) right++;
          const s = sigmoid(-d) / total;
          g[b]! -= s;
          g[w]! += s;
        }
        if (train) backward(r, g);
      });
    if (train) run();
    else noGrad(run);
  }
  return { loss, tokens, metrics: { accuracy: right / total, pairs: total } };
}

export interface RmRun {
  runDir: string;
  rm: RewardModel;
  data: readonly PreferenceExample[];
  cfg: RmConfig & { lr: number; "seq-len": number };
}

/** Run (or resume) reward-model training in runDir. */
export async function trainRewardModel(run: RmRun, opts: LoopOptions = {}) {
  const { rm, cfg } = run;
  return trainLoop(
    {
      runDir: run.runDir,
      model: rm.base,
      cfg,
      items: run.data.map((_, i) => i),
      fingerprint: dataHash(run.data, cfg["seq-len"]),
      step: (idx) => rmStep(rm, run.data, idx, cfg["seq-len"], cfg["micro-batch"]),
      extra: {
        params: [rm.head],
        save: (folder) => writeSafetensors(join(folder, HEAD_STATE), new Map([[SCORE, rm.head]])),
        load: (folder) => {
          const f = SafetensorsFile.open(join(folder, HEAD_STATE));
          try {
            const t = f.read(SCORE);
            assign(rm.head, t.data);
            t.dispose();
          } finally {
            f.close();
          }
        },
      },
    },
    opts,
  );
}

/** The HF config fields of a reward model over the base's. */
export const RM_CONFIG = { architectures: ["LlamaForSequenceClassification"], num_labels: 1 };

/** Write a reward model as an HF directory (base weights + score.weight). */
export async function saveRewardModel(dir: string, rm: RewardModel): Promise<void> {
  const tensors = new Map(rm.base.weights);
  tensors.set(SCORE, rm.head);
  await writeHFCheckpoint(dir, { ...toHFConfig(rm.base.config, "f32"), ...RM_CONFIG }, tensors);
}

/** Read what saveRewardModel wrote; errors name the directory. */
export async function loadRewardModel(dir: string): Promise<RewardModel> {
  const { config, tensors } = await readHFCheckpoint(dir);
  const head = tensors.get(SCORE);
  if (!head)
    throw new Error(
      `${join(dir, "model.safetensors")}: no '${SCORE}': not a reward model (herd rm writes one)`,
    );
  tensors.delete(SCORE);
  const base = new Llama(fromHFConfig(config, join(dir, "config.json")), tensors, dir);
  if (head.rank !== 2 || head.shape[0] !== 1 || head.shape[1] !== base.config.hiddenSize)
    throw new Error(`${dir}: '${SCORE}' has shape [${head.shape}], needs [1, ${base.config.hiddenSize}]`);
  head.requiresGrad = true;
  return { base, head: head.keep() };
}
