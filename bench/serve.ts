// `npm run bench -- serve`: the HTTP server (engine in its worker thread) on the `small` preset's shape
// with the Llama 3 vocabulary and random weights (prompts as token ids through /v1/completions): aggregate
// tokens/s and p50/p99 time to first token at 1, 4, 16 and 32 concurrent streaming clients, greedy, 16
// new tokens each; prefix-cache hit against miss TTFT for a 512-token shared prompt; and autocannon (an
// independent load generator) driving non-streaming requests. First, serveLora.ts: the cost of LoRA
// adapters (mixed per row) in a batched step against base-only steps. Kept short: the machine has 2 cores.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { initWeights, Llama, preset, saveModel } from "../src/model/index.js";
import { serve } from "../src/serve/index.js";
import { run as loraSteps } from "./serveLora.js";

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};

export async function run(): Promise<void> {
  await loraSteps();
  const dir = mkdtempSync(join(tmpdir(), "herd-bench-serve-"));
  // The small preset's shape with the Llama 3 vocabulary, so the server has its tokenizer.
  const cfg = {
    ...preset("small"),
    vocabSize: 128256,
    bosTokenId: 128000,
    eosTokenIds: [128001, 128008, 128009],
  };
  const m = new Llama(cfg, initWeights(cfg, { seed: 1, dtype: "bf16" }), "init");
  await saveModel(join(dir, "small"), m);
  m.dispose();
  const served = await serve({ model: join(dir, "small"), port: 0, engine: { parallel: 32, maxQueue: 128 } });
  await served.ready;
  const url = `${served.url}/v1/completions`;
  const once = async (prompt: number[], max: number): Promise<{ ttft: number; tokens: number }> => {
    const t0 = performance.now();
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        prompt,
        max_tokens: max,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    const reader = res.body!.getReader();
    let ttft = 0;
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (ttft === 0) ttft = performance.now() - t0;
      text += new TextDecoder().decode(value);
    }
    const usage = /"completion_tokens":(\d+)/.exec(text);
    return { ttft, tokens: usage ? Number(usage[1]) : 0 };
  };
  try {
    const prompt = (i: number, n: number) =>
      Array.from({ length: n }, (_, t) => 1 + ((i * 131 + t * 7) % 4000));
    await once(prompt(999, 32), 4); // warm-up
    console.log("clients  tokens/s  TTFT p50 ms  TTFT p99 ms");
    for (const clients of [1, 4, 16, 32]) {
      const t0 = performance.now();
      const rs = await Promise.all(
        Array.from({ length: clients }, (_, i) => once(prompt(clients * 100 + i, 64), 16)),
      );
      const s = (performance.now() - t0) / 1000;
      const tokens = rs.reduce((n, r) => n + r.tokens, 0);
      console.log(
        `${String(clients).padStart(7)}  ${(tokens / s).toFixed(1).padStart(8)}  ${pct(
          rs.map((r) => r.ttft),
          50,
        )
          .toFixed(0)
          .padStart(11)}  ${pct(
          rs.map((r) => r.ttft),
          99,
        )
          .toFixed(0)
          .padStart(11)}`,
      );
    }
    const shared = prompt(7, 512);
    const miss = await once([...shared, 11], 1);
    const hit = await once([...shared, 12], 1);
    console.log(
      `prefix cache, 512-token shared prompt: TTFT miss ${miss.ttft.toFixed(0)} ms, hit ${hit.ttft.toFixed(0)} ms`,
    );
    const r = await autocannon({
      url,
      method: "POST",
      connections: 8,
      duration: 5,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: prompt(5, 64), max_tokens: 16, temperature: 0 }),
    });
    console.log(
      `autocannon, 8 connections, 5 s, 16 tokens each: ${r.requests.total} requests (${r.non2xx} non-2xx), latency p50 ${r.latency.p50} ms p99 ${r.latency.p99} ms, ${((r.requests.total * 16) / 5).toFixed(1)} tokens/s`,
    );
  } finally {
    await served.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
