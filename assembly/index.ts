// Entry point of the wasm kernels (compiled by scripts/build-wasm.mjs to build/kernels.wasm). Every
// export works on byte addresses in the imported shared memory, and the ones that take (tid, nth) do
// the share of thread tid of nth; the JS side (src/backends/wasm/) allocates the memory and runs them.
export { attention, attentionBackward, attentionScratchBytes } from "./attention";
export { gemvBf16, widenBf16 } from "./bf16";
export { crossEntropy, crossEntropyBackward } from "./crossEntropy";
export { add, adamw, axpy, mul, scale, sum, sumSquares, swiglu, swigluBackward } from "./elementwise";
export { gemmScratchBytes, sgemm } from "./gemm";
export { gemv } from "./gemv";
export { clockProbe } from "./probe";
export { rmsNorm, rmsNormBackward, softmax } from "./rows";

/** First byte past the module's static data: the JS allocator hands out memory above this. */
export function heapBase(): usize {
  return __heap_base;
}
