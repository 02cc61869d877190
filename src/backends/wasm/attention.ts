// The wasm backend's attention (assembly/attention.ts), forward and backward: per-thread scratch sized
// by the kernel for (seqK, headDim), the arrays and document ids staged like every other kernel's.
import type { AttentionArgs, Backend } from "../backend.js";
import { type Core, MIN_PARALLEL_FLOPS, type Mode } from "./core.js";

export function attentionOps(core: Core): Pick<Backend, "attention" | "attentionBackward"> {
  function attentionJob(backward: boolean, floats: [Float32Array, Mode][], a: AttentionArgs): void {
    const { batch, seqQ, seqK, heads, kvHeads, headDim } = a;
    if ((a.qDocIds === null) !== (a.kDocIds === null))
      throw new Error("attention: qDocIds and kDocIds must be given together");
    if (batch === 0 || seqQ === 0 || heads === 0) return;
    const stride = Math.ceil(core.exports["attentionScratchBytes"]!(seqK, headDim, +backward) / 64) * 64;
    const scratch = core.area("attention", stride * core.threads());
    const docs: [Int32Array, Mode][] =
      a.qDocIds && a.kDocIds
        ? [
            [a.qDocIds, "in"],
            [a.kDocIds, "in"],
          ]
        : [];
    const flops = 4 * batch * heads * seqQ * seqK * headDim;
    core.staged([...floats, ...docs], (ptrs) => {
      const [qDoc, kDoc] = docs.length > 0 ? ptrs.slice(floats.length) : [0, 0];
      const shape = [batch, seqQ, seqK, heads, kvHeads, headDim, a.scale, +a.causal, qDoc!, kDoc!];
      const args = [...ptrs.slice(0, floats.length), ...shape, scratch, stride, core.counter];
      core.run(backward ? "attentionBackward" : "attention", args, flops >= MIN_PARALLEL_FLOPS);
    });
  }

  return {
    attention(q, k, v, out, lse, a) {
      attentionJob(
        false,
        [
          [q, "in"],
          [k, "in"],
          [v, "in"],
          [out, "out"],
          [lse, "out"],
        ],
        a,
      );
    },
    attentionBackward(q, k, v, out, dout, lse, dq, dk, dv, a) {
      const ins: [Float32Array, Mode][] = [
        [q, "in"],
        [k, "in"],
        [v, "in"],
        [out, "in"],
        [dout, "in"],
        [lse, "in"],
      ];
      attentionJob(true, [...ins, [dq, "out"], [dk, "out"], [dv, "out"]], a);
    },
  };
}
