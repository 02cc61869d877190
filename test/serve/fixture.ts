// A tiny served model for the HTTP tests: two layers, the Llama 3 vocabulary (chat needs its special
// tokens), random weights saved as an HF checkpoint, served on a random loopback port with the js
// backend (deterministic: a batched request equals the request alone).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initWeights, Llama, preset, saveModel } from "../../src/model/index.js";
import { type Served, type ServeOptions, serve } from "../../src/serve/index.js";

export function tinyLlama3(seed = 5): Llama {
  const c = { ...preset("tiny"), hiddenSize: 32, numAttentionHeads: 2, numKeyValueHeads: 1, headDim: 16 };
  const cfg = {
    ...c,
    numHiddenLayers: 2,
    intermediateSize: 64,
    vocabSize: 128256,
    maxPositionEmbeddings: 256,
    bosTokenId: 128000,
    eosTokenIds: [128001, 128008, 128009],
  };
  return new Llama(cfg, initWeights(cfg, { seed }), "init");
}

export interface Fixture {
  dir: string;
  model: Llama;
  served: Served;
  cleanup(): Promise<void>;
}

export async function servedFixture(over: Partial<ServeOptions> = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), "herd-serve-"));
  const model = tinyLlama3();
  const modelDir = join(dir, "tiny-llama3");
  await saveModel(modelDir, model, { dtype: "f32" });
  const served = await serve({ model: modelDir, port: 0, backend: "js", f32: true, ...over });
  await served.ready;
  return {
    dir: modelDir,
    model,
    served,
    cleanup: async () => {
      await served.close();
      model.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
