// Capture once, replay each run: the backend kernel calls a function makes are recorded while it runs,
// then run again with new parameters, the way CUDA graphs or ggml's graph_compute run a decode step
// without the host between kernels. A backend with `compileGraph` (native) replays the whole sequence in
// one call; any other replays it call by call (the reference, and what the tests compare).
//
// Constraints, which whoever captures must keep:
// - Every computation inside the captured function goes through the backend's kernels (tensor ops do);
//   work done in JS on the buffers (filling an input) is not recorded and happens only at capture.
// - Buffers allocated while capturing belong to the graph: they live until dispose(), so replays can
//   reuse them. Buffers from outside that a recorded call uses (weights, a KV cache) must outlive the
//   graph: whoever captured it disposes it first (a Llama disposes its decode graph with its weights,
//   and recaptures when its KV cache is another or was reallocated).
// - A number that changes from run to run is passed with `kernelCall(op, args, dyn)` naming its
//   parameter; every other argument is recorded as the value it had. Kernels that return a value (sum)
//   cannot be recorded.

import type { CompiledGraph, GraphCall, GraphDyn } from "../backends/backend.js";
import { kernelOf, supports } from "../backends/fallbacks.js";
import { type Backend, getBackend, setBackend } from "../backends/index.js";

export type { GraphCall, GraphDyn } from "../backends/backend.js";

/** A dynamic argument of one call: argument `arg` (or its field) = params[param]·mul + add. */
export interface DynArg {
  arg: number;
  field?: string;
  param: number;
  mul?: number;
  add?: number;
}

interface Recording {
  calls: GraphCall[];
  owned: Set<Float32Array>;
  pending: GraphDyn[] | null;
}

let recording: Recording | null = null;

/** Whether the active backend replays a graph in one call (Backend.compileGraph). */
export function graphsReplayNatively(): boolean {
  return supports(getBackend(), "compileGraph");
}

/** Whether a capture is under way (ops that cannot be recorded check this). */
export function isCapturing(): boolean {
  return recording !== null;
}

/** Call the active backend's kernel `op`; while capturing, `dyn` marks the arguments that vary per run. */
export function kernelCall<K extends KernelName>(
  op: K,
  args: KernelArgs<K>,
  dyn: readonly DynArg[] = [],
): void {
  const backend = getBackend();
  if (recording) recording.pending = dyn.map((d) => ({ ...d, mul: d.mul ?? 1, add: d.add ?? 0 }) as GraphDyn);
  (backend[op] as (...a: unknown[]) => unknown)(...args);
}

type KernelName = {
  [K in keyof Backend]-?: NonNullable<Backend[K]> extends (...a: never[]) => void ? K : never;
}[keyof Backend];
type KernelArgs<K extends KernelName> = Parameters<NonNullable<Backend[K]>>;

/** Kernels whose result is a returned value, not a buffer: they cannot be replayed. */
const RETURNS_VALUE = new Set(["sum", "sumSquares", "liveBytes"]);
/** Backend members that are not kernels. */
const NOT_KERNELS = new Set(["name", "alloc", "free", "liveBytes", "compileGraph", "threads", "isa"]);

/** The backend seen inside a capture: each kernel call is recorded, then run on `real`. */
function recorder(real: Backend, rec: Recording): Backend {
  return new Proxy(real, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (prop === "alloc")
        return (n: number) => {
          const buf = target.alloc(n);
          rec.owned.add(buf);
          return buf;
        };
      if (prop === "free")
        return (buf: Float32Array) => {
          if (!rec.owned.has(buf)) target.free(buf); // the graph's own are freed by dispose()
        };
      if (prop === "compileGraph") return undefined;
      if (typeof prop !== "string" || NOT_KERNELS.has(prop) || typeof value !== "function") return value;
      if (RETURNS_VALUE.has(prop))
        return () => {
          throw new Error(`graph capture: kernel '${prop}' returns a value and cannot be replayed`);
        };
      return (...args: unknown[]) => {
        rec.calls.push({ op: prop, args, dyn: rec.pending ?? [] });
        rec.pending = null;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** A recorded sequence of kernel calls, replayed by run(params). */
export class Graph {
  private compiled: CompiledGraph | null;
  private disposed = false;

  constructor(
    readonly calls: readonly GraphCall[],
    private readonly owned: ReadonlySet<Float32Array>,
    private readonly backend: Backend,
  ) {
    this.compiled = kernelOf(backend, "compileGraph")?.(calls) ?? null;
  }

  /** Whether the backend replays it in one call (else call by call). */
  get native(): boolean {
    return this.compiled !== null;
  }

  run(params: readonly number[]): void {
    if (this.disposed) throw new Error("Graph: run after dispose()");
    if (this.compiled) this.compiled.run(params);
    else replay(this.backend, this.calls, params);
  }

  /** Free the buffers allocated while capturing. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.compiled?.dispose();
    this.compiled = null;
    for (const b of this.owned) this.backend.free(b);
  }
}

/** Run `fn` once for real, recording the kernel calls it makes on the active backend. */
export function capture<T>(fn: () => T): { graph: Graph; result: T } {
  if (recording) throw new Error("graph capture: already capturing");
  const real = getBackend();
  const rec: Recording = { calls: [], owned: new Set(), pending: null };
  recording = rec;
  setBackend(recorder(real, rec));
  let result: T;
  try {
    result = fn();
  } catch (e) {
    for (const b of rec.owned) real.free(b);
    throw e;
  } finally {
    recording = null;
    setBackend(real);
  }
  return { graph: new Graph(rec.calls, rec.owned, real), result };
}

/** The value of a dynamic argument for these parameters. */
export function dynValue(d: GraphDyn, params: readonly number[]): number {
  const p = params[d.param];
  if (p === undefined) throw new Error(`graph: parameter ${d.param} was not given`);
  return p * d.mul + d.add;
}

/** The calls run one by one on `backend` (the reference replay). */
export function replay(backend: Backend, calls: readonly GraphCall[], params: readonly number[]): void {
  for (const c of calls) {
    let args = c.args;
    if (c.dyn.length > 0) {
      const a = args.slice();
      for (const d of c.dyn) {
        const v = dynValue(d, params);
        if (d.field === undefined) a[d.arg] = v;
        else a[d.arg] = { ...(a[d.arg] as object), [d.field]: v };
      }
      args = a;
    }
    (backend[c.op as keyof Backend] as (...x: unknown[]) => unknown).apply(backend, args as unknown[]);
  }
}
