// The Llama 3 model in one import: config and presets, RoPE frequencies, weights, the model with its KV
// cache, and loading/saving checkpoint directories and GGUF files.
export {
  GGUF_EXPORT_TYPES,
  type GGUFExportSource,
  type GGUFExportType,
  readGGUFModel,
  writeGGUFModel,
} from "./checkpoint/ggufLlama.js";
export { readGGUFTokenizer } from "./checkpoint/ggufVocab.js";
export * from "./config.js";
export * from "./kvcache.js";
export * from "./llama.js";
export * from "./load.js";
export * from "./presets.js";
export * from "./quantize.js";
export * from "./rope.js";
export * from "./weights.js";
