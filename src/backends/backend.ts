// The kernel interface every backend implements. The tensor front end (src/tensor/) calls only these
// functions, so a new backend (wasm, native, WebGPU) plugs in by implementing this record and passing
// the conformance suite in test/backends/conformance.test.ts; nothing else changes.
//
// Conventions, for every kernel:
// - All buffers are Float32Array (ids: Int32Array), contiguous, row-major. A backend may hand out
//   Float32Arrays that are views into its own memory (wasm: one shared WebAssembly.Memory); kernels of
//   that backend receive arrays it allocated, but must also accept plain arrays (tests pass them).
// - Kernels never allocate their outputs: the caller passes `out`/`d*` buffers of the documented size.
// - "accumulate" means out += result; otherwise out = result.
// - Shapes are passed as numbers; the front end has already validated them.

import type { QuantFormat } from "./js/quant.js";

export interface MatmulArgs {
  /** Number of independent products. */
  batch: number;
  /** op(A) is m×k, op(B) is k×n, C is m×n. */
  m: number;
  n: number;
  k: number;
  /** A is stored k×m (so op(A) = Aᵀ). */
  transA: boolean;
  /** B is stored n×k (so op(B) = Bᵀ): the `x·Wᵀ` case for PyTorch-layout weights. */
  transB: boolean;
  /** Element strides between batch items; 0 broadcasts one matrix over the batch. */
  strideA: number;
  strideB: number;
  strideC: number;
  /** C += op(A)·op(B) instead of C = op(A)·op(B). */
  accumulate: boolean;
}

export interface AttentionArgs {
  batch: number;
  /** Query positions per batch item (T) and key positions (S ≥ T; S > T with a KV cache). */
  seqQ: number;
  seqK: number;
  heads: number;
  /** heads % kvHeads === 0; query head h reads KV head floor(h / (heads / kvHeads)) (GQA). */
  kvHeads: number;
  headDim: number;
  /** Softmax scale, normally 1/sqrt(headDim). */
  scale: number;
  /** Query t may see key s only if s <= t + (seqK - seqQ). */
  causal: boolean;
  /** Optional document ids: qDoc [batch*seqQ], kDoc [batch*seqK]; a query sees a key only if equal. */
  qDocIds: Int32Array | null;
  kDocIds: Int32Array | null;
}
// Attention layouts: q [batch, seqQ, heads, headDim]; k, v [batch, seqK, kvHeads, headDim];
// out [batch, seqQ, heads, headDim]; lse (log-sum-exp of the scaled, masked scores) [batch, heads, seqQ].
// A query row with no visible key produces out = 0 and lse = -Infinity (its gradient is 0).

export interface AdamWArgs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count, for bias correction. */
  step: number;
}

/**
 * One kernel call recorded into a graph (src/tensor/graph.ts, which captures a sequence of calls once and
 * replays it): the Backend method `op` and its arguments as they were passed, buffers by reference.
 * `dyn` lists the numbers that change from one run to the next: argument `arg` (or field `field` of the
 * argument record there) is params[param]·mul + add in each run.
 */
export interface GraphCall {
  op: string;
  args: readonly unknown[];
  dyn: readonly GraphDyn[];
}

export interface GraphDyn {
  arg: number;
  field?: string;
  param: number;
  mul: number;
  add: number;
}

/** A graph a backend compiled to replay on its own (Backend.compileGraph). */
export interface CompiledGraph {
  /** Run every call in order with these parameters. */
  run(params: readonly number[]): void;
  dispose(): void;
}

/**
 * Kernels a backend may leave out. It lists the ones it has in `supports` (ggml's supports_op); a caller
 * gets any kernel through src/backends/fallbacks.ts, which gives the backend's own or the one fallback.
 */
export type OptionalKernel =
  | "matmulBf16"
  | "matmulBf16Many"
  | "matmulQuant"
  | "matmulBf16Grad"
  | "matmulQuantGrad"
  | "compileGraph";

export interface Backend {
  readonly name: string;
  /** The optional kernels this backend implements itself (no others are present on it). */
  readonly supports: readonly OptionalKernel[];

  // --- memory ---------------------------------------------------------------------------------
  /** A zero-filled f32 buffer of n elements owned by this backend. */
  alloc(n: number): Float32Array;
  /** Return a buffer from alloc(); using it afterwards is an error. Plain arrays are ignored. */
  free(buf: Float32Array): void;
  /** Bytes currently held by alloc() and not freed (for leak tests). */
  liveBytes(): number;

  // --- dense algebra --------------------------------------------------------------------------
  matmul(a: Float32Array, b: Float32Array, c: Float32Array, args: MatmulArgs): void;
  /**
   * Optional: C (m×n) = A (m×k) · Bᵀ with B (n×k) given as bf16 bit patterns (a linear layer on bf16
   * weights, widened to f32 on the fly; C is overwritten). Inference only. The js backend's version is
   * the reference; a backend without its own gets block-wise widening over its `matmul` (fallbacks.ts).
   */
  matmulBf16?(a: Float32Array, bBits: Uint16Array, c: Float32Array, m: number, n: number, k: number): void;
  /**
   * Optional: C (m×n) = A (m×k) · Wᵀ with W (n×k) as GGUF Q8_0/Q4_0 blocks (a linear layer on
   * weight-only quantised weights; C is overwritten). Inference only. Layout, semantics and the reference
   * kernel: src/backends/js/quant.ts, which a backend without its own runs (fallbacks.ts). A backend may
   * quantise A to 8 bits for Q8_0/Q4_0 (the native one on AVX2: matmulQuantQ8 is its reference) unless
   * `exact`, which keeps A in f32: a forward whose gradient is taken (matmulQuantGrad differentiates the
   * f32 product).
   */
  matmulQuant?(
    a: Float32Array,
    blocks: Uint8Array,
    c: Float32Array,
    m: number,
    n: number,
    k: number,
    format: QuantFormat,
    exact?: boolean,
  ): void;

  /**
   * Optional: dX (m×k) (+)= dY (m×n) · W with W (n×k) as bf16 bit patterns: the input gradient of
   * matmulBf16 through a frozen weight (LoRA on a bf16 base). W is never widened whole. The js backend's
   * version is the reference; the fallback widens a block of rows at a time over `matmul` (fallbacks.ts).
   */
  matmulBf16Grad?(
    dy: Float32Array,
    bBits: Uint16Array,
    dx: Float32Array,
    m: number,
    n: number,
    k: number,
    accumulate: boolean,
  ): void;
  /** Optional: dX (m×k) (+)= dY (m×n) · W with W (n×k) as Q8_0/Q4_0 blocks (matmulQuant's input gradient). */
  matmulQuantGrad?(
    dy: Float32Array,
    blocks: Uint8Array,
    dx: Float32Array,
    m: number,
    n: number,
    k: number,
    format: QuantFormat,
    accumulate: boolean,
  ): void;

  /**
   * Optional: c[q] = A·b[q]ᵀ for several bf16 weights sharing A (each b[q] is n[q]×k), in one kernel
   * call, so a decode step's Q/K/V (or gate/up) projections cost one parallel dispatch instead of three.
   * Same results as matmulBf16 on each (the fallback: one matmulBf16 each).
   */
  matmulBf16Many?(
    a: Float32Array,
    bBits: readonly Uint16Array[],
    c: readonly Float32Array[],
    m: number,
    n: readonly number[],
    k: number,
  ): void;

  /**
   * Optional: compile recorded calls to be replayed in one call each run (native: no JS between the
   * kernels). The calls' buffers stay owned by the caller, who keeps them alive until dispose(). Null when
   * a call is one the backend cannot replay itself (the graph is then replayed call by call).
   */
  compileGraph?(calls: readonly GraphCall[]): CompiledGraph | null;

  // --- elementwise (n elements) --------------------------------------------------------------
  /** dst[dstOffset + i] = src[srcOffset + i] for i < n. */
  copy(src: Float32Array, srcOffset: number, dst: Float32Array, dstOffset: number, n: number): void;
  add(a: Float32Array, b: Float32Array, out: Float32Array, n: number): void;
  mul(a: Float32Array, b: Float32Array, out: Float32Array, n: number): void;
  /** out = a * s (out may be a). */
  scale(a: Float32Array, s: number, out: Float32Array, n: number): void;
  /** acc += a * s. */
  axpy(acc: Float32Array, a: Float32Array, s: number, n: number): void;
  /** Sum of elements (f64 accumulation). */
  sum(a: Float32Array, n: number): number;
  /** Sum of squares (f64 accumulation), for global-norm clipping. */
  sumSquares(a: Float32Array, n: number): number;

  // --- row kernels: normalisation, rotary embedding, gated activation, softmax, attention -------------
  /** out[r] = x[r] * rsqrt(mean(x[r]²) + eps) * w; rstd[r] = that rsqrt (kept for backward). */
  rmsNorm(
    x: Float32Array,
    w: Float32Array,
    out: Float32Array,
    rstd: Float32Array,
    rows: number,
    dim: number,
    eps: number,
  ): void;
  /** dx = ∂loss/∂x (written), dw += ∂loss/∂w (accumulated; skipped when dw is null). */
  rmsNormBackward(
    dy: Float32Array,
    x: Float32Array,
    w: Float32Array,
    rstd: Float32Array,
    dx: Float32Array,
    dw: Float32Array | null,
    rows: number,
    dim: number,
  ): void;
  /**
   * Rotary embedding, split-halves (HF) layout: for each token t, head h, i < headDim/2, with
   * angle = positions[t] * invFreq[i] (f32 product), (x_i, x_{i+half}) is rotated by angle
   * (or by -angle when inverse, which is the backward pass). x, out: [tokens, heads, headDim].
   */
  rope(
    x: Float32Array,
    out: Float32Array,
    positions: Int32Array,
    invFreq: Float32Array,
    tokens: number,
    heads: number,
    headDim: number,
    inverse: boolean,
  ): void;
  /** out = silu(gate) * up. */
  swiglu(gate: Float32Array, up: Float32Array, out: Float32Array, n: number): void;
  swigluBackward(
    gate: Float32Array,
    up: Float32Array,
    dout: Float32Array,
    dgate: Float32Array,
    dup: Float32Array,
    n: number,
  ): void;
  /** Row-wise softmax of rows×cols (out may be x). */
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number): void;

  attention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    out: Float32Array,
    lse: Float32Array,
    args: AttentionArgs,
  ): void;
  /** Gradients are written (not accumulated) into dq, dk, dv. */
  attentionBackward(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    out: Float32Array,
    dout: Float32Array,
    lse: Float32Array,
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    args: AttentionArgs,
  ): void;

  /** out[r] = table[ids[r]] (rows×dim). */
  embedding(table: Float32Array, ids: Int32Array, out: Float32Array, rows: number, dim: number): void;
  /** dtable[ids[r]] += dout[r]. */
  embeddingBackward(
    dout: Float32Array,
    ids: Int32Array,
    dtable: Float32Array,
    rows: number,
    dim: number,
  ): void;

  /**
   * Fused cross-entropy: for each row r with weight w_r = (targets[r] === ignoreIndex ? 0 : mask?.[r] ?? 1),
   * losses[r] = w_r * (logsumexp(logits[r]) - logits[r][targets[r]]) and lse[r] = logsumexp(logits[r]).
   * The softmax is not stored.
   */
  crossEntropy(
    logits: Float32Array,
    targets: Int32Array,
    mask: Float32Array | null,
    losses: Float32Array,
    lse: Float32Array,
    rows: number,
    vocab: number,
    ignoreIndex: number,
  ): void;
  /** dlogits[r] = scale * w_r * (softmax(logits[r]) - onehot(targets[r])), from the saved lse. */
  crossEntropyBackward(
    logits: Float32Array,
    targets: Int32Array,
    mask: Float32Array | null,
    lse: Float32Array,
    scale: number,
    dlogits: Float32Array,
    rows: number,
    vocab: number,
    ignoreIndex: number,
  ): void;

  // --- optimiser ------------------------------------------------------------------------------
  /** Fused decoupled-weight-decay Adam step over n elements (PyTorch AdamW semantics). */
  adamw(
    param: Float32Array,
    grad: Float32Array,
    m: Float32Array,
    v: Float32Array,
    n: number,
    args: AdamWArgs,
  ): void;
}
