// Reverse-mode autograd over coarse ops. Each recorded op pushes one node holding the tensors its
// backward reads; backward walks the tape from the end, calling each node's backward with the gradient
// of its output, which adds gradients into its inputs (one kernel per input, no graph of tiny ops).
// Gradients of intermediate tensors live only while needed; leaves (parameters) accumulate into .grad
// until the optimiser zeroes them. `noGrad(fn)` runs fn without recording (inference).
// `checkpoint(fn, inputs)` is activation recomputation: fn's intermediates are freed after the forward
// and rebuilt from its inputs when backward reaches it.
import { getBackend } from "../backends/index.js";
import { scope, shapeStr, type Tensor, untracked, zeros } from "./tensor.js";

/** Writes the gradient of one input: `write(dst, accumulate)` must add into dst when accumulate. */
export type GradSink = (input: Tensor, write: (dst: Float32Array, accumulate: boolean) => void) => void;

interface Node {
  output: Tensor;
  /** Tensors the backward reads (kept alive until the node is released). */
  saved: Tensor[];
  /** Scratch buffers the backward reads, freed with the node. */
  scratch: Float32Array[];
  backward: (gradOut: Float32Array, sink: GradSink) => void;
}

let tape: Node[] = [];
let gradDepth = 0; // > 0 inside noGrad

export function isGradEnabled(): boolean {
  return gradDepth === 0;
}

/** Run fn without recording any op (inference, optimiser updates). */
export function noGrad<T>(fn: () => T): T {
  gradDepth++;
  try {
    return fn();
  } finally {
    gradDepth--;
  }
}

/** True when an op with these inputs must be recorded. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  if (gradDepth > 0) return false;
  for (const t of inputs) if (t?.requiresGrad) return true;
  return false;
}

/** Record an op: output depends on saved tensors through backward. */
export function record(
  output: Tensor,
  saved: Tensor[],
  backward: Node["backward"],
  scratch: Float32Array[] = [],
): void {
  output.requiresGrad = true;
  for (const t of saved) t.tapeRefs++;
  tape.push({ output, saved, scratch, backward });
}

/** Number of nodes waiting on the tape (for tests and leak checks). */
export function tapeLength(): number {
  return tape.length;
}

function release(node: Node): void {
  const backend = getBackend();
  for (const b of node.scratch) backend.free(b);
  for (const t of node.saved) t.releaseTapeRef();
}

/** Drop every recorded op without computing gradients. */
export function clearTape(): void {
  const nodes = tape;
  tape = [];
  for (const n of nodes) release(n);
}

/**
 * Backpropagate from `loss` (a one-element tensor, or any tensor with an explicit `gradient` of its
 * shape): leaves with requiresGrad get their gradient added into `.grad`. Clears the tape.
 */
export function backward(loss: Tensor, gradient?: Float32Array): void {
  if (!loss.requiresGrad)
    throw new Error(`backward: ${loss} does not depend on any tensor that requires a gradient`);
  if (!gradient && loss.size !== 1)
    throw new Error(
      `backward: loss has shape ${shapeStr(loss.shape)}; pass a gradient of that shape or reduce it to one element`,
    );
  if (gradient && gradient.length !== loss.size)
    throw new Error(`backward: gradient of ${gradient.length} elements for loss ${shapeStr(loss.shape)}`);
  const backend = getBackend();
  const grads = new Map<Tensor, Float32Array>();
  const leafGrad = (t: Tensor): Float32Array => {
    if (!t.grad) t.grad = untracked(() => zeros(t.shape));
    return t.grad.data;
  };
  const isLeaf = (t: Tensor) => !producers.has(t);
  const producers = new Set<Tensor>();
  for (const n of tape) producers.add(n.output);

  const sink: GradSink = (input, write) => {
    if (!input.requiresGrad) return;
    if (isLeaf(input)) {
      // A fresh .grad is zero, so accumulating is always right for leaves.
      write(leafGrad(input), true);
      return;
    }
    const have = grads.get(input);
    if (have) write(have, true);
    else {
      const g = backend.alloc(input.size);
      write(g, false);
      grads.set(input, g);
    }
  };

  const seed = backend.alloc(loss.size);
  if (gradient) seed.set(gradient);
  else seed.fill(1);
  if (isLeaf(loss)) {
    backend.axpy(leafGrad(loss), seed, 1, loss.size);
    backend.free(seed);
  } else grads.set(loss, seed);

  const nodes = tape;
  tape = [];
  let i = nodes.length - 1;
  try {
    for (; i >= 0; i--) {
      const node = nodes[i]!;
      const g = grads.get(node.output);
      if (g) {
        for (const t of node.saved)
          if (t.isDisposed)
            throw new Error(`backward: ${t} was disposed before backward; keep the step inside one scope`);
        node.backward(g, sink);
        grads.delete(node.output);
        backend.free(g);
      }
      release(node);
    }
  } finally {
    for (; i >= 0; i--) release(nodes[i]!);
    for (const g of grads.values()) backend.free(g);
  }
}

/**
 * Activation recomputation (gradient checkpointing): run `fn(...inputs)` without recording and keep
 * only its inputs and output; the tape gets one node whose backward runs fn again from the inputs,
 * recording, and back-propagates the output's gradient through that fresh piece of tape (parameters
 * fn reads get their gradients there, the inputs' gradients are handed on). fn must be deterministic
 * (no randomness: Llama has no dropout) and must not read tensors other than `inputs` and `params`
 * that need a gradient. `params`: the trainable tensors fn reads, so a block whose input needs no
 * gradient is still recorded. Without anything needing a gradient, fn simply runs.
 */
export function checkpoint(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], params: Tensor[] = []): Tensor {
  if (!needsGrad(...inputs, ...params)) return fn(...inputs);
  const out = scope(() => noGrad(() => fn(...inputs)));
  if (inputs.includes(out)) throw new Error("checkpoint: fn returned one of its inputs");
  record(out, inputs, (g, sink) => recompute(fn, inputs, g, sink));
  return out;
}

function recompute(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], g: Float32Array, sink: GradSink): void {
  const depth = gradDepth;
  gradDepth = 0;
  try {
    scope(() => {
      // Views of the inputs are leaves of the recomputed piece: their .grad collects the input gradients.
      const xs = inputs.map((x) => {
        const v = x.view(x.shape);
        v.requiresGrad = x.requiresGrad;
        return v;
      });
      const y = fn(...xs);
      if (y.requiresGrad) backward(y, g);
      xs.forEach((v, i) => {
        const vg = v.grad;
        if (vg)
          sink(inputs[i]!, (dst, acc) =>
            acc ? getBackend().axpy(dst, vg.data, 1, dst.length) : dst.set(vg.data),
          );
      });
    });
  } finally {
    gradDepth = depth;
  }
}
