// The Llama 3 model in one import: config and presets, RoPE frequencies, weights, the model with its KV
// cache, and loading/saving checkpoint directories.
export * from "./config.js";
export * from "./kvcache.js";
export * from "./llama.js";
export * from "./load.js";
export * from "./presets.js";
export * from "./quantize.js";
export * from "./rope.js";
export * from "./weights.js";
