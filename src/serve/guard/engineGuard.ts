// Llama Guard 3 run by a serving engine (its own worker thread, engine/host.ts) rather than on the HTTP
// thread: the same prompt and verdict rules as LlamaGuardClassifier (classifier.ts) — greedy, a short
// verdict, malformed output counted unsafe — with the decoding submitted to the guard model's engine, so
// classifying never blocks the event loop that serves the other requests.
import type { ChatFormat } from "../../tokenizer/chat.js";
import { encodeGuardPrompt } from "../../tokenizer/guard.js";
import type { GuardClassifier } from "../contracts.js";
import type { EngineClient } from "../engine/client.js";
import { type GuardClassifierOptions, guardSettings, type JudgedVerdict, verdictOf } from "./classifier.js";

export class EngineGuardClassifier implements GuardClassifier {
  private readonly categories: readonly string[] | undefined;
  private readonly maxNewTokens: number;

  constructor(
    private readonly engine: EngineClient,
    private readonly chat: ChatFormat,
    opts: GuardClassifierOptions = {},
  ) {
    ({ categories: this.categories, maxNewTokens: this.maxNewTokens } = guardSettings(opts));
  }

  async classify(turns: readonly { role: "user" | "assistant"; content: string }[]): Promise<JudgedVerdict> {
    const prompt = encodeGuardPrompt(
      this.chat,
      turns,
      this.categories ? { categories: this.categories } : {},
    );
    const ids: number[] = [];
    await new Promise<void>((resolve, reject) => {
      this.engine
        .submit(
          {
            prompt,
            maxTokens: this.maxNewTokens,
            temperature: 0,
            topP: 1,
            seed: 0,
            stopIds: this.chat.stopIds(),
            logprobs: null,
          },
          {
            onTokens: (tokens) => {
              for (const t of tokens) ids.push(t.id);
            },
            onDone: (d) =>
              d.finishReason === "error" ? reject(new Error("guard: the guard model failed")) : resolve(),
          },
        )
        .catch(reject);
    });
    return verdictOf(this.chat.tokenizer.decode(ids), this.categories);
  }
}
