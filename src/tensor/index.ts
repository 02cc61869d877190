// The tensor front end in one import: tensors, ops, autograd, optimiser, dtypes, graph capture and the
// KV cache ops (the cache class itself: src/tensor/kvcache.ts; a model's is src/model/kvcache.ts).
export * from "./dtype.js";
export { capture, Graph, graphsReplayNatively, kernelCall, replay } from "./graph.js";
export { CACHE_LENGTH, type CachedAttentionOptions, cachedAttention, cacheWrite } from "./kvcache.js";
export * from "./ops.js";
export * from "./optim.js";
export * from "./quant.js";
export { backward, checkpoint, clearTape, isGradEnabled, noGrad, tapeLength } from "./tape.js";
export * from "./tensor.js";
