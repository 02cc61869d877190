// The KV cache of a Llama model: the engine's cache (src/tensor/kvcache.ts) sized from the config, one
// K and V store of numKeyValueHeads·headDim per layer.
import { KVCache as EngineKVCache } from "../tensor/kvcache.js";
import type { LlamaConfig } from "./config.js";

export class KVCache extends EngineKVCache {
  constructor(config: LlamaConfig, batch = 1, capacity = 256) {
    super(config.numHiddenLayers, config.numKeyValueHeads * config.headDim, batch, capacity);
  }
}
