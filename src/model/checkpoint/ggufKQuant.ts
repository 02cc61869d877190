// ggml's K-quants (Q4_K, Q5_K, Q6_K) as GGUF files hold them: the block layouts and the reference
// dequantiser live with the kernels' reference in src/backends/js/kquant.ts (the native kernels are
// tested against it); this module names them for the GGUF code. A GGUF file's K-quant matrices load as
// QuantTensors in those formats (ggufLlama.ts), read by the native K-quant kernels as stored.
export { dequantizeK, K_BLOCK_BYTES, type KQuant, QK_K, scaleMinK4 } from "../../tensor/quant.js";
