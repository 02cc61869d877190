// The native backend's compileGraph: recorded kernel calls (src/tensor/graph.ts) flattened into the
// node list native/graph.cc replays in one call. Each kernel the addon can replay has a flattening here
// (its buffers, its numbers, and where each argument's number lands, so a dynamic argument can be
// patched); a call of any other kernel makes the graph not compilable (null), and it is replayed call
// by call instead. The graph keeps every buffer it names alive until dispose.
import type { CompiledGraph, GraphCall } from "../backend.js";

/** The node kinds of native/graph.cc. */
const KIND = {
  matmulBf16: 1,
  matmulQuant: 2,
  rmsNorm: 3,
  rope: 4,
  swiglu: 5,
  add: 6,
  mul: 7,
  scale: 8,
  copy: 9,
  attention: 10,
} as const;

type Buffer = Float32Array | Uint16Array | Uint8Array | Int32Array | null;

export interface GraphAddon {
  graphCreate(
    kinds: Int32Array,
    bufStart: Int32Array,
    bufs: Buffer[],
    numStart: Int32Array,
    nums: Float64Array,
    dyn: Float64Array,
  ): object;
  graphRun(handle: object, params: Float64Array): void;
  graphFree(handle: object): void;
}

interface Flat {
  kind: number;
  bufs: Buffer[];
  nums: number[];
  /** Index into nums of argument i (key "i") or of field f of argument i (key "i.f"). */
  at: Record<string, number>;
}

/** Packed copy of a bf16 weight for the GEMV (or null), as the backend's matmulBf16 finds it. */
export type PackedFor = (m: number, b: Uint16Array, rows: number, k: number) => Uint16Array | null;

const ATTN_FIELDS = ["batch", "seqQ", "seqK", "heads", "kvHeads", "headDim", "scale", "causal"] as const;

/** One call as a node, or null when the addon cannot replay it. */
function flatten(c: GraphCall, packed: PackedFor): Flat | null {
  const a = c.args as unknown[];
  const num = (i: number) => a[i] as number;
  const pos = (from: number, n: number, base = 0) =>
    Object.fromEntries(Array.from({ length: n }, (_, j) => [String(from + j), base + j]));
  switch (c.op) {
    case "matmulBf16": {
      const [x, b, out, m, n, k] = a as [Float32Array, Uint16Array, Float32Array, number, number, number];
      return {
        kind: KIND.matmulBf16,
        bufs: [x, b, out, packed(m, b, n, k)],
        nums: [m, k, 1, n],
        at: { 3: 0, 5: 1, 4: 3 },
      };
    }
    case "matmulBf16Many": {
      const [x, bs, cs, m, ns, k] = a as [
        Float32Array,
        Uint16Array[],
        Float32Array[],
        number,
        number[],
        number,
      ];
      const bufs: Buffer[] = [x];
      for (const [q, b] of bs.entries()) bufs.push(b, cs[q]!, packed(m, b, ns[q]!, k));
      return { kind: KIND.matmulBf16, bufs, nums: [m, k, bs.length, ...ns], at: { 3: 0, 5: 1 } };
    }
    case "matmulQuant": {
      const format = ["q8_0", "q4_0", "q4_k", "q5_k", "q6_k"].indexOf(a[6] as string);
      if (format < 0) return null;
      return {
        kind: KIND.matmulQuant,
        bufs: a.slice(0, 3) as Buffer[],
        nums: [num(3), num(4), num(5), format],
        at: pos(3, 3),
      };
    }
    case "rmsNorm":
      return {
        kind: KIND.rmsNorm,
        bufs: a.slice(0, 4) as Buffer[],
        nums: [num(4), num(5), num(6)],
        at: pos(4, 3),
      };
    case "rope":
      return {
        kind: KIND.rope,
        bufs: a.slice(0, 4) as Buffer[],
        nums: [num(4), num(5), num(6), a[7] ? 1 : 0],
        at: pos(4, 4),
      };
    case "swiglu":
    case "add":
    case "mul":
      return { kind: KIND[c.op], bufs: a.slice(0, 3) as Buffer[], nums: [num(3)], at: pos(3, 1) };
    case "scale":
      return {
        kind: KIND.scale,
        bufs: [a[0] as Buffer, a[2] as Buffer],
        nums: [num(1), num(3)],
        at: { 1: 0, 3: 1 },
      };
    case "copy":
      return {
        kind: KIND.copy,
        bufs: [a[0] as Buffer, a[2] as Buffer],
        nums: [num(1), num(3), num(4)],
        at: { 1: 0, 3: 1, 4: 2 },
      };
    case "attention": {
      const args = a[5] as Record<string, unknown>;
      if (args.qDocIds || args.kDocIds) return null;
      const nums = ATTN_FIELDS.map((f) => (f === "causal" ? (args[f] ? 1 : 0) : (args[f] as number)));
      const at = Object.fromEntries(ATTN_FIELDS.map((f, j) => [`5.${f}`, j]));
      return { kind: KIND.attention, bufs: a.slice(0, 5) as Buffer[], nums, at };
    }
    default:
      return null;
  }
}

/** Compile calls for native/graph.cc; null when one of them is a kernel it does not replay. */
export function compileNativeGraph(
  addon: GraphAddon,
  calls: readonly GraphCall[],
  packed: PackedFor,
): CompiledGraph | null {
  const kinds: number[] = [];
  const bufStart = [0];
  const numStart = [0];
  const bufs: Buffer[] = [];
  const nums: number[] = [];
  const dyn: number[] = [];
  for (const c of calls) {
    const f = flatten(c, packed);
    if (!f) return null;
    for (const d of c.dyn) {
      const at = f.at[d.field === undefined ? String(d.arg) : `${d.arg}.${d.field}`];
      if (at === undefined) return null;
      dyn.push(nums.length + at, d.param, d.mul, d.add);
    }
    kinds.push(f.kind);
    bufs.push(...f.bufs);
    nums.push(...f.nums);
    bufStart.push(bufs.length);
    numStart.push(nums.length);
  }
  let handle: object | null = addon.graphCreate(
    Int32Array.from(kinds),
    Int32Array.from(bufStart),
    bufs,
    Int32Array.from(numStart),
    Float64Array.from(nums),
    Float64Array.from(dyn),
  );
  return {
    run(params) {
      if (!handle) throw new Error("graph: run after dispose()");
      addon.graphRun(handle, Float64Array.from(params));
    },
    dispose() {
      if (handle) addon.graphFree(handle);
      handle = null;
      bufs.length = 0; // the buffers may go once the graph has
    },
  };
}
