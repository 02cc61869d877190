// The Llama 3 model (spec §2.4): token embedding → L pre-norm blocks (RMSNorm → grouped-query attention
// with RoPE → residual; RMSNorm → SwiGLU FFN → residual) → final RMSNorm → output projection (the
// embedding itself when tied). One forward serves training (autograd records through the ops) and
// inference (under noGrad, optionally with a KV cache for incremental decoding, and with bf16 weights
// used as stored). Weights are a map from Hugging Face names to tensors (weights.ts); a quantised
// checkpoint's matrices are QuantTensors (Q8_0/Q4_0, frozen) kept in `quantized`. `adapters` holds
// updates added to a layer matrix's output (LoRA, src/posttrain/lora.ts), keyed by the matrix's HF name.
// forwardRows (a step of continuous batching) takes a RowAdapter per row instead: the base matrices run
// once over every row's tokens, then each adapter adds its low-rank updates to its own rows' outputs.

import { knob } from "../core/knobs.js";
import { capture, type Graph, graphsReplayNatively } from "../tensor/graph.js";
import { cachedAttention, cacheWrite } from "../tensor/kvcache.js";
import { embeddingBf16, linearsBf16 } from "../tensor/linearBf16.js";
import {
  add,
  attention,
  crossEntropy,
  embedding,
  linear,
  reshape,
  rmsNorm,
  rope,
  swiglu,
} from "../tensor/ops.js";
import { embeddingQuant, QuantTensor } from "../tensor/quant.js";
import { checkpoint, isGradEnabled } from "../tensor/tape.js";
import { scope, shapeStr, type Tensor, zeros } from "../tensor/tensor.js";
import { type LlamaConfig, validateConfig } from "./config.js";
import type { KVCache } from "./kvcache.js";
import { ropeInvFreq } from "./rope.js";
import { EMBED, FINAL_NORM, LM_HEAD, layerName, weightShapes } from "./weights.js";

export interface ForwardOptions {
  /** Rows of the batch (default 1); ids holds batch·seq tokens, row-major. */
  batch?: number;
  /** Document id of every token [batch·seq]: attention stays inside a document (spec §2.7). */
  docIds?: Int32Array;
  /** Restart RoPE positions at 0 at each document (needs docIds; not with a cache). */
  resetPositions?: boolean;
  /** Explicit RoPE positions [batch·seq] (default 0..seq−1, after the cached tokens). */
  positions?: Int32Array;
  /** Incremental decoding: attend to the cached tokens too, then append these. Inference only. */
  cache?: KVCache;
  /** "last": logits of each row's last token only ([batch, 1, V]); default all. */
  logits?: "all" | "last";
  /**
   * "hidden": return the final hidden states after the last RMSNorm ([batch, seq, hiddenSize], or
   * [batch, 1, hiddenSize] with logits "last") instead of logits: what a head other than the LM head
   * reads (the reward model's scalar head, as HF's LlamaForSequenceClassification). Default "logits".
   */
  output?: "logits" | "hidden";
  /**
   * Activation recomputation while training (default: the model's `recompute`): keep only each
   * block's input and recompute the block's activations during backward.
   */
  recompute?: boolean;
}

/**
 * One row of a continuous batch (forwardRows): its own KV cache, how many of the step's ids are its
 * (consecutive, in row order), and whether it wants the logits of all of them (prompt log-probs) or of its
 * last only.
 */
export interface BatchRow {
  cache: KVCache;
  tokens: number;
  allLogits?: boolean;
  /** The adapter this row runs with (null or absent: the base alone). */
  adapter?: RowAdapter | null;
}

/**
 * A low-rank update of one layer matrix W [out, in] for forwardRows: the matrix's output x·Wᵀ gains
 * scale·(x·Aᵀ)·Bᵀ (LoRA's B·A·x·α/r, unmerged), with A [r, in] and B [out, r] in f32.
 */
export interface LowRankDelta {
  readonly A: Tensor;
  readonly B: Tensor;
  readonly scale: number;
}

/** One row's adapter in forwardRows: its updates by the HF name of the matrix each updates (…q_proj.weight). */
export type RowAdapter = ReadonlyMap<string, LowRankDelta>;

/** The step's tokens (indices into its ids) that run with one adapter. */
interface AdapterGroup {
  adapter: RowAdapter;
  tokens: Int32Array;
}

/** Tensors old HF checkpoints carry that are not weights (recomputed from the config). */
const IGNORED = /\.rotary_emb\.inv_freq$/;

/** A matrix: f32, bf16, or weight-only quantised (Q8_0/Q4_0, frozen; src/tensor/quant.ts). */
export type Matrix = Tensor | QuantTensor;

/**
 * An update added to one layer matrix's output: `linear(x, W)` becomes `apply(x, linear(x, W), pass)`
 * (LoRA's y + B·A·x·α/r). `parameters` are the tensors it trains (recomputed blocks need them listed).
 */
export interface LinearAdapter {
  apply(x: Tensor, y: Tensor, pass: ForwardPass): Tensor;
  readonly parameters: readonly Tensor[];
}

/**
 * Which forward an adapter runs in: `training` (gradients were being recorded when forward began) and
 * the forward's number on this model, so randomness keyed by it (LoRA dropout) is drawn again the same
 * when a recomputed block runs a second time during backward.
 */
export interface ForwardPass {
  readonly training: boolean;
  readonly index: number;
}

const INFERENCE: ForwardPass = { training: false, index: -1 };

interface Layer {
  attnNorm: Tensor;
  wq: Matrix;
  wk: Matrix;
  wv: Matrix;
  wo: Matrix;
  ffnNorm: Tensor;
  w1: Matrix;
  w3: Matrix;
  w2: Matrix;
}

export class Llama {
  readonly config: LlamaConfig;
  /** Every weight by HF name (the tied output head is not listed: it is the embedding). */
  readonly weights: Map<string, Tensor>;
  /** The quantised matrices by HF name (a quantised checkpoint: every matrix; then `weights` holds the norms). */
  readonly quantized: Map<string, QuantTensor>;
  readonly invFreq: Float32Array;
  /** Activation recomputation in the training forward (ForwardOptions.recompute overrides it). */
  recompute = false;
  /** Adapters by the HF name of the layer matrix they update (empty: the plain model). */
  readonly adapters = new Map<string, LinearAdapter>();
  private readonly layers: Layer[];
  private readonly embed: Matrix;
  private readonly norm: Tensor;
  private readonly head: Matrix;
  /** The decode step captured as a graph, for the cache it was captured on (decodeGraph). */
  private decode: DecodeGraph | null = null;
  /** Set once a captured step did not compile (its weights' kernels are not all replayable): no more captures. */
  private decodeUncompilable = false;
  /** Forward calls so far (ForwardPass.index). */
  private passes = 0;

  /**
   * A model over `tensors` (HF names). Every tensor the config needs must be there with its shape;
   * errors name `source` (the checkpoint file or directory) and the tensor. RMSNorm weights are made f32;
   * f16 matrices are widened to f32 (bf16 ones are used as stored). A tied config ignores a stored
   * `lm_head.weight`. Matrices may be QuantTensors (inference only; RMSNorm weights may not).
   */
  constructor(config: LlamaConfig, tensors: Map<string, Tensor | QuantTensor>, source = "weights") {
    this.config = validateConfig(config, source);
    this.invFreq = ropeInvFreq(config);
    const shapes = weightShapes(config);
    for (const name of tensors.keys())
      if (!shapes.has(name) && !IGNORED.test(name) && !(name === LM_HEAD && config.tieWordEmbeddings))
        throw new Error(`${source}: tensor '${name}' is not a weight of this Llama config`);
    this.weights = new Map();
    this.quantized = new Map();
    for (const [name, shape] of shapes) {
      let t = tensors.get(name);
      if (!t) throw new Error(`${source}: tensor '${name}' is missing`);
      if (t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i]))
        throw new Error(
          `${source}: tensor '${name}' has shape ${shapeStr(t.shape)}, the config needs ${shapeStr(shape)}`,
        );
      if (t instanceof QuantTensor) {
        t.name = name;
        this.quantized.set(name, t);
        continue;
      }
      if (t.dtype === "f16" || (t.dtype === "bf16" && shape.length === 1)) {
        const wide = t.toF32();
        t.dispose();
        t = wide;
      }
      t.keep();
      t.name = name;
      this.weights.set(name, t);
    }
    const w = (name: string) => this.weights.get(name)!;
    const m = (name: string): Matrix => this.quantized.get(name) ?? w(name);
    this.embed = m(EMBED);
    this.norm = w(FINAL_NORM);
    this.head = config.tieWordEmbeddings ? this.embed : m(LM_HEAD);
    this.layers = [];
    for (let l = 0; l < config.numHiddenLayers; l++) {
      const p = (part: string) => m(layerName(l, part));
      const norm = (part: string) => w(layerName(l, part));
      this.layers.push({
        attnNorm: norm("input_layernorm"),
        wq: p("self_attn.q_proj"),
        wk: p("self_attn.k_proj"),
        wv: p("self_attn.v_proj"),
        wo: p("self_attn.o_proj"),
        ffnNorm: norm("post_attention_layernorm"),
        w1: p("mlp.gate_proj"),
        w3: p("mlp.up_proj"),
        w2: p("mlp.down_proj"),
      });
    }
  }

  /** A matrix by HF name (f32, bf16 or quantised), or undefined. */
  matrix(name: string): Matrix | undefined {
    return this.quantized.get(name) ?? this.weights.get(name);
  }

  /** Weights that can be trained (f32 with requiresGrad), in HF order. */
  parameters(): Tensor[] {
    return [...this.weights.values()].filter((t) => t.requiresGrad);
  }

  /** Make every f32 weight trainable (requiresGrad). bf16 and quantised weights cannot be trained. */
  trainable(): this {
    const [q] = this.quantized.values();
    if (q)
      throw new Error(
        `Llama.trainable: weight '${q.name}' is ${q.format}; quantised weights are for inference`,
      );
    for (const t of this.weights.values()) {
      if (t.dtype !== "f32")
        throw new Error(
          `Llama.trainable: weight '${t.name}' is ${t.dtype}; load the checkpoint as f32 to train`,
        );
      t.requiresGrad = true;
    }
    return this;
  }

  /** Storage dtype of the large matrices ("bf16" when loaded that way; "q8_0"/"q4_0" when quantised). */
  get dtype(): string {
    return this.embed.dtype;
  }

  /**
   * Logits [batch, seq, V] (or [batch, 1, V] with logits "last") for token ids [batch·seq].
   * Call inside `scope` (training) or `noGrad`+`scope` (inference) so intermediates are freed.
   */
  forward(ids: Int32Array, opts: ForwardOptions = {}): Tensor {
    const c = this.config;
    const B = opts.batch ?? 1;
    if (!(Number.isInteger(B) && B >= 1) || ids.length % B !== 0)
      throw new Error(`Llama.forward: ${ids.length} ids do not split into batch ${B}`);
    const T = ids.length / B;
    if (T === 0) throw new Error("Llama.forward: no tokens");
    const cache = opts.cache;
    if (cache) {
      if (isGradEnabled() && this.parameters().length > 0)
        throw new Error("Llama.forward: a KV cache is for inference; run it under noGrad");
      if (cache.batch !== B)
        throw new Error(`Llama.forward: cache of batch ${cache.batch}, input batch ${B}`);
      if (opts.resetPositions)
        throw new Error("Llama.forward: resetPositions with a KV cache; pass positions");
    }
    const docIds = opts.docIds;
    if (docIds && docIds.length !== ids.length)
      throw new Error(`Llama.forward: ${docIds.length} document ids for ${ids.length} tokens`);
    const positions =
      opts.positions ?? this.positionsFor(B, T, cache?.length ?? 0, docIds, opts.resetPositions);
    if (positions.length !== ids.length)
      throw new Error(`Llama.forward: ${positions.length} positions for ${ids.length} tokens`);

    if (cache && B === 1 && T === 1 && !docIds && this.adapters.size === 0) {
      const logits = this.decodeGraph(ids, positions[0]!, cache);
      if (logits) return logits;
    }
    let h = this.embedTokens(ids, [B, T]);
    if (cache) {
      cache.reserve(T);
      if (docIds) cache.writeDocs(docIds, T);
    }
    const recompute = (opts.recompute ?? this.recompute) && !cache && isGradEnabled();
    const pass: ForwardPass = { training: isGradEnabled() && !cache, index: this.passes++ };
    for (let l = 0; l < this.layers.length; l++) {
      const prev = h;
      h = scope(() =>
        recompute
          ? checkpoint(
              (x) => this.block(l, x, B, T, positions, docIds, undefined, pass),
              [prev],
              [
                ...Object.values(this.layers[l]!).filter((w) => w.requiresGrad),
                ...this.layerAdapterParameters(l),
              ],
            )
          : this.block(l, prev, B, T, positions, docIds, cache, pass),
      );
      prev.dispose(); // deferred by the tensor while the autograd tape still needs it
    }
    cache?.advance(T);
    return scope(() => {
      let x = h;
      if (opts.logits === "last") {
        const last = Int32Array.from({ length: B }, (_, b) => b * T + T - 1);
        x = embedding(reshape(h, [B * T, c.hiddenSize]), last, [B, 1]);
      }
      const normed = rmsNorm(x, this.norm, c.rmsNormEps);
      return opts.output === "hidden" ? normed : linear(normed, this.head);
    });
  }

  /**
   * One step of continuous batching: rows of different lengths, each with its own batch-1 KV cache (a
   * decode row feeds 1 id, a prefill row a chunk of its prompt). The linear layers run over all the
   * step's tokens at once; RoPE takes each token at its row's position; attention runs per row over that
   * row's own cache, so a row computes what it would alone wherever the matrix products round the same
   * for a batch as for one row (the js backend). Returns logits [outputs, V]: per row its last token's,
   * or all its tokens' when `allLogits`. Inference only (call under noGrad + scope). Each row may name a
   * RowAdapter: the base matrices still run once over all the tokens, then the tokens of each adapter
   * (gathered across the rows that use it) get its low-rank updates, so rows with different adapters and
   * rows with none share one step. Model-level `adapters` (training's LoRA) are not supported here.
   */
  forwardRows(ids: Int32Array, rows: readonly BatchRow[]): Tensor {
    const c = this.config;
    if (isGradEnabled() && this.parameters().length > 0)
      throw new Error("Llama.forwardRows: inference only; run it under noGrad");
    if (this.adapters.size > 0)
      throw new Error("Llama.forwardRows: attached adapters are not supported here; pass BatchRow.adapter");
    const N = rows.reduce((n, r) => n + r.tokens, 0);
    if (N !== ids.length || N === 0 || rows.some((r) => !(r.tokens >= 1)))
      throw new Error(`Llama.forwardRows: ${ids.length} ids for rows of ${rows.map((r) => r.tokens)}`);
    const positions = new Int32Array(N);
    const pick: number[] = [];
    let at = 0;
    for (const r of rows) {
      if (r.cache.batch !== 1) throw new Error("Llama.forwardRows: each row's cache must be of batch 1");
      for (let t = 0; t < r.tokens; t++) positions[at + t] = r.cache.length + t;
      if (r.allLogits) for (let t = 0; t < r.tokens; t++) pick.push(at + t);
      else pick.push(at + r.tokens - 1);
      r.cache.reserve(r.tokens);
      at += r.tokens;
    }
    const groups = adapterGroups(rows);
    let h = this.embedTokens(ids, [1, N]);
    for (let l = 0; l < this.layers.length; l++) {
      const prev = h;
      h = scope(() => this.rowsBlock(l, prev, N, positions, rows, groups));
      prev.dispose();
    }
    for (const r of rows) r.cache.advance(r.tokens);
    return scope(() => {
      const x = embedding(reshape(h, [N, c.hiddenSize]), Int32Array.from(pick), [pick.length]);
      return linear(rmsNorm(x, this.norm, c.rmsNormEps), this.head);
    });
  }

  /** Mean cross-entropy of the next-token predictions against targets (−100 = ignored). */
  loss(ids: Int32Array, targets: Int32Array, opts: ForwardOptions & { mask?: Float32Array } = {}): Tensor {
    if (targets.length !== ids.length)
      throw new Error(`Llama.loss: ${targets.length} targets for ${ids.length} tokens`);
    return scope(() => {
      const logits = this.forward(ids, { ...opts, logits: "all" });
      return crossEntropy(logits, targets, opts.mask ? { mask: opts.mask } : {});
    });
  }

  /** Free every weight. */
  dispose(): void {
    for (const t of this.weights.values()) t.dispose();
    for (const t of this.quantized.values()) t.dispose();
    this.decode?.graph.dispose();
    this.decode = null;
  }

  // --- pieces ---------------------------------------------------------------------------------------

  /**
   * One decode step (a token of batch 1 with a KV cache) replayed from a captured graph, when the backend
   * replays graphs itself (native): the step's kernels (the ones `block` runs, recorded once) run back
   * to back without JS between them, the time in which a decode step's weight stream stands still, and
   * give the same logits bit for bit. The graph is captured on the first step with a cache and again when
   * the cache changes or grows. Null: take the op-by-op path. HERD_FUSED_DECODE=0 turns it off (the
   * benchmark and the tests compare the two).
   */
  private decodeGraph(ids: Int32Array, position: number, cache: KVCache): Tensor | null {
    if (
      this.decodeUncompilable ||
      !graphsReplayNatively() ||
      !knob("HERD_FUSED_DECODE") ||
      cache.hasDocs ||
      cache.batch !== 1
    )
      return null;
    cache.reserve(1);
    const x = this.embedTokens(ids, [1, 1]);
    let d = this.decode;
    if (d && d.cache === cache && d.version === cache.version) {
      d.input.set(x.data);
      d.positions[0] = position;
      d.graph.run([cache.length]);
    } else {
      d?.graph.dispose();
      this.decode = null;
      const positions = Int32Array.of(position);
      const { graph, result } = capture(() => {
        const input = zeros([1, 1, this.config.hiddenSize]).keep();
        input.data.set(x.data);
        let h = input;
        for (let l = 0; l < this.layers.length; l++)
          h = this.block(l, h, 1, 1, positions, undefined, cache, INFERENCE);
        const logits = linear(rmsNorm(h, this.norm, this.config.rmsNormEps), this.head).keep();
        return { input: input.data, logits: logits.data };
      });
      d = { graph, cache, version: cache.version, positions, ...result };
      this.decode = d;
      if (!graph.native) {
        // The capture ran this step for real: keep its logits, and take the op path from the next step
        // on (it is as fast as a call-by-call replay, and capturing again would only fail again).
        const logits = zeros([1, 1, this.config.vocabSize]);
        logits.data.set(d.logits);
        graph.dispose();
        this.decode = null;
        this.decodeUncompilable = true;
        x.dispose();
        cache.advance(1);
        return logits;
      }
    }
    x.dispose();
    cache.advance(1);
    const logits = zeros([1, 1, this.config.vocabSize]);
    logits.data.set(d.logits);
    return logits;
  }

  private positionsFor(
    B: number,
    T: number,
    offset: number,
    docIds: Int32Array | undefined,
    reset: boolean | undefined,
  ): Int32Array {
    const pos = new Int32Array(B * T);
    if (reset && !docIds) throw new Error("Llama.forward: resetPositions needs docIds");
    for (let b = 0; b < B; b++) {
      let p = 0;
      for (let t = 0; t < T; t++) {
        const i = b * T + t;
        if (reset && t > 0 && docIds![i] !== docIds![i - 1]) p = 0;
        pos[i] = reset ? p++ : offset + t;
      }
    }
    return pos;
  }

  /** Embedding rows; a bf16 or quantised table is gathered row by row without an f32 copy of it. */
  private embedTokens(ids: Int32Array, shape: number[]): Tensor {
    const table = this.embed;
    if (table instanceof QuantTensor) return embeddingQuant(table, ids, shape);
    if (table.dtype === "f32") return embedding(table, ids, shape);
    return embeddingBf16(table, ids, shape);
  }

  private block(
    l: number,
    h: Tensor,
    B: number,
    T: number,
    positions: Int32Array,
    docIds: Int32Array | undefined,
    cache: KVCache | undefined,
    pass: ForwardPass,
  ): Tensor {
    const c = this.config;
    const w = this.layers[l]!;
    const H = c.numAttentionHeads;
    const K = c.numKeyValueHeads;
    const hd = c.headDim;
    const x = rmsNorm(h, w.attnNorm, c.rmsNormEps);
    const [xq, xk, xv] = this.adapt(
      l,
      pass,
      ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
      x,
      [w.wq, w.wk, w.wv],
    );
    const q = rope(reshape(xq!, [B, T, H, hd]), positions, this.invFreq);
    const k = rope(reshape(xk!, [B, T, K, hd]), positions, this.invFreq);
    const v = reshape(xv!, [B, T, K, hd]);
    let a: Tensor;
    if (cache) {
      cacheWrite(cache, l, k, v, T);
      a = cachedAttention(cache, l, q, docIds ? { docIds } : {});
    } else {
      a = attention(q, k, v, { docIds });
    }
    const [o] = this.adapt(l, pass, ["self_attn.o_proj"], reshape(a, [B, T, H * hd]), [w.wo]);
    h = add(h, o!);
    const y = rmsNorm(h, w.ffnNorm, c.rmsNormEps);
    const [gate, up] = this.adapt(l, pass, ["mlp.gate_proj", "mlp.up_proj"], y, [w.w1, w.w3]);
    const [down] = this.adapt(l, pass, ["mlp.down_proj"], swiglu(gate!, up!), [w.w2]);
    return add(h, down!);
  }

  /** `block` for forwardRows: batched matrices, attention row by row over each row's own cache. */
  private rowsBlock(
    l: number,
    h: Tensor,
    N: number,
    positions: Int32Array,
    rows: readonly BatchRow[],
    groups: readonly AdapterGroup[],
  ): Tensor {
    const c = this.config;
    const w = this.layers[l]!;
    const H = c.numAttentionHeads;
    const K = c.numKeyValueHeads;
    const hd = c.headDim;
    const lin = (parts: readonly string[], x: Tensor, ws: readonly Matrix[]) =>
      rowsLinears(l, parts, x, ws, groups);
    const x = rmsNorm(h, w.attnNorm, c.rmsNormEps);
    const [xq, xk, xv] = lin(["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], x, [
      w.wq,
      w.wk,
      w.wv,
    ]);
    const q = rope(reshape(xq!, [1, N, H, hd]), positions, this.invFreq);
    const k = rope(reshape(xk!, [1, N, K, hd]), positions, this.invFreq);
    const v = reshape(xv!, [1, N, K, hd]);
    const a = zeros([1, N, H * hd]);
    const slice = (t: Tensor, from: number, n: number, heads: number) => {
      const out = zeros([1, n, heads, hd]);
      out.data.set(t.data.subarray(from * heads * hd, (from + n) * heads * hd));
      return out;
    };
    let at = 0;
    for (const r of rows) {
      const n = r.tokens;
      cacheWrite(r.cache, l, slice(k, at, n, K), slice(v, at, n, K), n);
      const ar = cachedAttention(r.cache, l, slice(q, at, n, H));
      a.data.set(ar.data, at * H * hd);
      at += n;
    }
    const [o] = lin(["self_attn.o_proj"], a, [w.wo]);
    const h2 = add(h, o!);
    const y = rmsNorm(h2, w.ffnNorm, c.rmsNormEps);
    const [gate, up] = lin(["mlp.gate_proj", "mlp.up_proj"], y, [w.w1, w.w3]);
    const [down] = lin(["mlp.down_proj"], swiglu(gate!, up!), [w.w2]);
    return add(h2, down!);
  }

  /** `linears(x, ws)` with each output passed through the adapter of layer l's matrix `parts[i]`, if any. */
  private adapt(
    l: number,
    pass: ForwardPass,
    parts: readonly string[],
    x: Tensor,
    ws: readonly Matrix[],
  ): Tensor[] {
    const ys = linears(x, ws);
    if (this.adapters.size === 0) return ys;
    return ys.map((y, i) => this.adapters.get(layerName(l, parts[i]!))?.apply(x, y, pass) ?? y);
  }

  /** The trainable tensors of layer l's adapters. */
  private layerAdapterParameters(l: number): Tensor[] {
    const prefix = `model.layers.${l}.`;
    const out: Tensor[] = [];
    for (const [name, a] of this.adapters)
      if (name.startsWith(prefix)) out.push(...a.parameters.filter((t) => t.requiresGrad));
    return out;
  }
}

/**
 * x·Wᵀ for several weights sharing x: bf16 weights (all of them) at inference go through one fused kernel call (a
 * decode step's Q/K/V, or gate/up: one parallel dispatch instead of several), anything else is one
 * `linear` each (the training path, and quantised weights).
 */
function linears(x: Tensor, ws: readonly Matrix[]): Tensor[] {
  const d = x.shape[x.rank - 1]!;
  const bf16 = ws.every((w): w is Tensor => !(w instanceof QuantTensor) && w.dtype === "bf16");
  const fused = bf16 ? linearsBf16(reshape(x, [x.size / d, d]), ws) : null;
  if (!fused) return ws.map((w) => linear(x, w));
  return fused.map((y, i) => reshape(y, [...x.shape.slice(0, -1), ws[i]!.shape[0]!]));
}

/** The rows' tokens grouped by adapter (rows without one are in no group), in first-use order. */
function adapterGroups(rows: readonly BatchRow[]): AdapterGroup[] {
  const byAdapter = new Map<RowAdapter, number[]>();
  let at = 0;
  for (const r of rows) {
    if (r.adapter) {
      const tokens = byAdapter.get(r.adapter) ?? [];
      for (let t = 0; t < r.tokens; t++) tokens.push(at + t);
      byAdapter.set(r.adapter, tokens);
    }
    at += r.tokens;
  }
  return [...byAdapter].map(([adapter, tokens]) => ({ adapter, tokens: Int32Array.from(tokens) }));
}

/**
 * `linears(x, ws)` over a forwardRows step ([1, N, in]), then for layer l's matrix `parts[i]` each
 * group's low-rank update added to its own tokens' rows of output i: the base product once for all
 * rows, the adapters' small ones per adapter.
 */
function rowsLinears(
  l: number,
  parts: readonly string[],
  x: Tensor,
  ws: readonly Matrix[],
  groups: readonly AdapterGroup[],
): Tensor[] {
  const ys = linears(x, ws);
  const inp = x.shape[x.rank - 1]!;
  const N = x.size / inp;
  for (const g of groups) {
    const names = parts.map((p) => layerName(l, p));
    if (!names.some((n) => g.adapter.has(n))) continue;
    // The group's tokens' rows of x, gathered once for the matrices that share x (q/k/v, gate/up).
    const rowsX = reshape(x, [N, inp]);
    const xs = g.tokens.length === N ? rowsX : embedding(rowsX, g.tokens, [g.tokens.length]);
    for (const [i, name] of names.entries()) {
      const d = g.adapter.get(name);
      if (d) addLowRank(ys[i]!, xs, d, g.tokens, name);
    }
  }
  return ys;
}

/** y[t] += scale·(x_t·Aᵀ)·Bᵀ for each token row t of `tokens`, xs [tokens, in] holding their x rows. */
function addLowRank(y: Tensor, xs: Tensor, d: LowRankDelta, tokens: Int32Array, name: string): void {
  const inp = xs.shape[1]!;
  const out = y.shape[y.rank - 1]!;
  if (
    d.A.rank !== 2 ||
    d.A.shape[1] !== inp ||
    d.B.rank !== 2 ||
    d.B.shape[0] !== out ||
    d.B.shape[1] !== d.A.shape[0]
  )
    throw new Error(
      `Llama.forwardRows: the update of '${name}' has A ${shapeStr(d.A.shape)}, B ${shapeStr(d.B.shape)}; the matrix is ${shapeStr([out, inp])}`,
    );
  const delta = linear(linear(xs, d.A), d.B).data;
  const yd = y.data;
  const s = d.scale;
  for (let j = 0; j < tokens.length; j++) {
    const o = tokens[j]! * out;
    for (let p = 0; p < out; p++) yd[o + p] = yd[o + p]! + s * delta[j * out + p]!;
  }
}

/** The captured decode step and what it was captured for. */
interface DecodeGraph {
  graph: Graph;
  cache: KVCache;
  version: number;
  /** The graph's own buffers: the token's embedding in, the position, the logits out. */
  input: Float32Array;
  positions: Int32Array;
  logits: Float32Array;
}
