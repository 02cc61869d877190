// The Tensor: a shape, a dtype and a storage buffer owned by a backend. Compute happens in f32; bf16
// and f16 tensors are storage only (weights, checkpoints) and are converted with `toF32`/`toDtype`.
//
// Memory is released deterministically: `scope(fn)` frees every tensor made inside fn except the ones
// it returns (which move to the enclosing scope) and the ones marked `keep()` (parameters). A tensor the
// autograd tape still needs is freed when the tape lets go of it (after backward or `clearTape`).
// `peakBytes(fn)` measures the high-water mark of the backend's live memory while fn runs.
import { type Backend, getBackend } from "../backends/index.js";
import { type DType, decodeHalf, encodeHalf } from "./dtype.js";

/** A buffer shared by a tensor and its views (reshape); freed when the last one is disposed. */
class Storage {
  refs = 1;
  /**
   * data: the elements; owner: the backend buffer that holds them (data itself for f32; for half
   * tensors on a backend, an f32 buffer of half the length whose bytes data views).
   */
  constructor(
    public data: Float32Array | Uint16Array,
    public readonly backend: Backend | null,
    private readonly owner: Float32Array | null = data instanceof Float32Array ? data : null,
  ) {}
  release(): void {
    if (--this.refs === 0) {
      if (this.backend && this.owner) this.backend.free(this.owner);
      this.data = new Float32Array(0);
    }
  }
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

function checkShape(shape: readonly number[], what: string): void {
  for (const d of shape)
    if (!Number.isInteger(d) || d < 0)
      throw new Error(`${what}: bad shape ${shapeStr(shape)} (dimensions must be integers ≥ 0)`);
}

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly size: number;
  /** True for parameters and for outputs of recorded ops that depend on one. */
  requiresGrad = false;
  /** Accumulated gradient (leaf tensors with requiresGrad), f32, same shape. */
  grad: Tensor | null = null;
  /** Number of live tape nodes that read this tensor; disposal waits for 0. */
  tapeRefs = 0;
  private storage: Storage;
  private disposed = false;
  private pendingDispose = false;
  private kept = false;
  /** Optional name, used in error messages (parameters carry their checkpoint names). */
  name = "";

  constructor(shape: readonly number[], dtype: DType, storage: Storage) {
    checkShape(shape, "Tensor");
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = sizeOf(shape);
    this.storage = storage;
    if (storage.data.length !== this.size)
      throw new Error(`Tensor: storage of ${storage.data.length} elements for shape ${shapeStr(shape)}`);
    track(this);
  }

  get rank(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** The f32 buffer (throws for bf16/f16 tensors and disposed ones). */
  get data(): Float32Array {
    this.assertLive("data");
    const d = this.storage.data;
    if (!(d instanceof Float32Array))
      throw new Error(`Tensor${this.label()}: data of a ${this.dtype} tensor; call toF32() first`);
    return d;
  }

  /** The raw bf16/f16 bit patterns of a half-precision tensor. */
  get halfBits(): Uint16Array {
    this.assertLive("halfBits");
    const d = this.storage.data;
    if (!(d instanceof Uint16Array)) throw new Error(`Tensor${this.label()}: halfBits of an f32 tensor`);
    return d;
  }

  /** The backend that owns this tensor's buffer (null for host-only half tensors). */
  get backend(): Backend | null {
    return this.storage.backend;
  }

  /** Exclude from scope cleanup (parameters, optimiser state, caches). */
  keep(): this {
    this.kept = true;
    return this;
  }

  /** A view of the same storage with another shape of the same size (no copy). */
  view(shape: readonly number[]): Tensor {
    this.assertLive("view");
    const n = sizeOf(shape);
    if (n !== this.size)
      throw new Error(
        `reshape: cannot view ${shapeStr(this.shape)} (${this.size}) as ${shapeStr(shape)} (${n})`,
      );
    this.storage.refs++;
    return new Tensor(shape, this.dtype, this.storage);
  }

  /** Free the buffer now (or as soon as the autograd tape no longer needs it). Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    if (this.tapeRefs > 0) {
      this.pendingDispose = true;
      return;
    }
    this.disposed = true;
    this.storage.release();
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** Called by the tape when a node that read this tensor is released. */
  releaseTapeRef(): void {
    if (--this.tapeRefs === 0 && this.pendingDispose) this.dispose();
  }

  get isKept(): boolean {
    return this.kept;
  }

  /** A plain copy of the values as f32 (converting half storage). */
  toArray(): Float32Array {
    this.assertLive("toArray");
    const d = this.storage.data;
    return d instanceof Float32Array ? d.slice() : decodeHalf(d, this.dtype as "bf16" | "f16");
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1)
      throw new Error(`item: tensor${this.label()} has shape ${shapeStr(this.shape)}, not one element`);
    return this.toArray()[0]!;
  }

  /** An f32 copy on the active backend (a new tensor, also for f32 input). */
  toF32(): Tensor {
    return fromArray(this.toArray(), this.shape);
  }

  /** A copy stored in `dtype` (half dtypes round to nearest even). */
  toDtype(dtype: DType): Tensor {
    if (dtype === "f32") return this.toF32();
    return fromHalfBits(encodeHalf(this.toArray(), dtype), this.shape, dtype);
  }

  toString(): string {
    return `Tensor${this.label()}(${shapeStr(this.shape)}, ${this.dtype})`;
  }

  label(): string {
    return this.name ? ` '${this.name}'` : "";
  }

  private assertLive(what: string): void {
    if (this.disposed) throw new Error(`${what}: tensor${this.label()} ${shapeStr(this.shape)} was disposed`);
  }
}

// --- creation ---------------------------------------------------------------------------------

/** A zero-filled f32 tensor on the active backend. */
export function zeros(shape: readonly number[]): Tensor {
  checkShape(shape, "zeros");
  const backend = getBackend();
  return new Tensor(shape, "f32", new Storage(backend.alloc(sizeOf(shape)), backend));
}

/** An f32 tensor holding a copy of `values`. */
export function fromArray(values: ArrayLike<number>, shape: readonly number[] = [values.length]): Tensor {
  if (sizeOf(shape) !== values.length)
    throw new Error(
      `fromArray: ${values.length} values do not fill shape ${shapeStr(shape)} (${sizeOf(shape)})`,
    );
  const t = zeros(shape);
  t.data.set(values);
  return t;
}

/** A tensor filled with one value. */
export function full(shape: readonly number[], value: number): Tensor {
  const t = zeros(shape);
  t.data.fill(value);
  return t;
}

/** A bf16/f16 tensor over existing bit patterns (host memory, no copy). */
export function fromHalfBits(bits: Uint16Array, shape: readonly number[], dtype: "bf16" | "f16"): Tensor {
  if (sizeOf(shape) !== bits.length)
    throw new Error(`fromHalfBits: ${bits.length} values for shape ${shapeStr(shape)}`);
  return new Tensor(shape, dtype, new Storage(bits, null));
}

/**
 * A zero-filled bf16/f16 tensor whose bits live in the active backend's memory, so kernels that read
 * half weights directly (matmulBf16) find them in place (for wasm: inside its shared memory).
 */
export function halfZeros(shape: readonly number[], dtype: "bf16" | "f16"): Tensor {
  checkShape(shape, "halfZeros");
  const n = sizeOf(shape);
  const backend = getBackend();
  const owner = backend.alloc(Math.ceil(n / 2));
  const bits = new Uint16Array(owner.buffer, owner.byteOffset, n);
  return new Tensor(shape, dtype, new Storage(bits, backend, owner));
}

/** A trainable leaf: kept across scopes, requiresGrad set. */
export function parameter(values: ArrayLike<number>, shape: readonly number[], name = ""): Tensor {
  const t = fromArray(values, shape).keep();
  t.requiresGrad = true;
  t.name = name;
  return t;
}

/** A new tensor that is not tracked by any scope (used for gradients and optimiser state). */
export function untracked<T>(fn: () => T): T {
  scopes.push(null);
  try {
    return fn();
  } finally {
    scopes.pop();
  }
}

// --- scopes -----------------------------------------------------------------------------------

const scopes: (Set<Tensor> | null)[] = [];

function track(t: Tensor): void {
  const s = scopes[scopes.length - 1];
  if (s) s.add(t);
}

function collect(value: unknown, into: Set<Tensor>, depth = 0): void {
  if (value instanceof Tensor) into.add(value);
  else if (depth < 4 && value && typeof value === "object") {
    for (const v of Array.isArray(value) ? value : Object.values(value)) collect(v, into, depth + 1);
  }
}

/**
 * Run fn and free every tensor it made, except those reachable from its result (arrays and plain
 * objects are searched a few levels deep) and kept ones. fn must be synchronous.
 */
export function scope<T>(fn: () => T): T {
  const mine = new Set<Tensor>();
  scopes.push(mine);
  let result: T;
  try {
    result = fn();
    if (result instanceof Promise) throw new Error("scope: fn must be synchronous (it returned a Promise)");
  } finally {
    scopes.pop();
  }
  const out = new Set<Tensor>();
  collect(result, out);
  const parent = scopes[scopes.length - 1];
  for (const t of mine) {
    if (out.has(t)) parent?.add(t);
    else if (!t.isKept) t.dispose();
  }
  return result;
}

// --- memory high-water mark ---------------------------------------------------------------------

/**
 * Run fn and report the most bytes the active backend held (its liveBytes()) at any moment inside it,
 * and the bytes held when it started. Every allocation goes through backend.alloc, so the active
 * backend's alloc is wrapped for the duration (measurement only: buffers and values are unchanged).
 */
export function peakBytes<T>(fn: () => T): { result: T; peak: number; start: number } {
  const backend = getBackend();
  const alloc = backend.alloc;
  const start = backend.liveBytes();
  let peak = start;
  backend.alloc = (n: number) => {
    const buf = alloc.call(backend, n);
    const live = backend.liveBytes();
    if (live > peak) peak = live;
    return buf;
  };
  try {
    const result = fn();
    return { result, peak, start };
  } finally {
    backend.alloc = alloc;
  }
}
