// llama.cpp itself, for the tests that check GGUF files against it: node-llama-cpp's prebuilt CPU binary
// (a dev dependency), loaded once per test process. `skip` is false, or the reason it cannot load here
// (a describe given { skip } then reports it). `llamaCppLogits` evaluates a prompt with one fixed
// context setup for every test: 1 thread, no flash attention, and an F32 KV cache, so that what differs
// from herd is the weights' arithmetic only (an F16 cache would round K and V as herd does not).
import { after } from "node:test";

// biome-ignore lint/suspicious/noExplicitAny: node-llama-cpp is loaded dynamically (optional)
type Any = any;

export let llama: Any = null;
export let skip: string | false = false;
try {
  const mod = await import("node-llama-cpp");
  llama = await mod.getLlama({
    gpu: false,
    build: "never",
    progressLogs: false,
    logLevel: mod.LlamaLogLevel.error,
  });
  after(async () => {
    await llama?.dispose();
  });
} catch (e) {
  skip = `node-llama-cpp's prebuilt llama.cpp cannot load here: ${(e as Error).message.split("\n")[0]}`;
}

/** llama.cpp's logits [T, V] at every position of `ids`, from the GGUF file at `path`. */
export async function llamaCppLogits(path: string, ids: number[], V: number): Promise<Float32Array> {
  const model = await llama.loadModel({ modelPath: path, useMmap: false });
  try {
    const ctx = await model.createContext({
      contextSize: Math.max(64, ids.length),
      batchSize: Math.max(64, ids.length),
      threads: 1,
      flashAttention: false,
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
    });
    try {
      const out = await ctx
        .getSequence()
        .controlledEvaluate(ids.map((t) => [t, { generateNext: { logits: true } }]));
      const logits = new Float32Array(ids.length * V);
      for (let i = 0; i < ids.length; i++) {
        const m: Map<number, number> = out[i].next.logits;
        for (let v = 0; v < V; v++) logits[i * V + v] = m.get(v) ?? Number.NaN;
      }
      return logits;
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/** The tokens llama.cpp's tokenizer makes of `text` with the vocabulary in the GGUF file at `path`. */
export async function llamaCppTokenize(path: string, texts: string[]): Promise<number[][]> {
  const m = await llama.loadModel({ modelPath: path, useMmap: false });
  try {
    return texts.map((t) => [...m.tokenize(t)]);
  } finally {
    await m.dispose();
  }
}
