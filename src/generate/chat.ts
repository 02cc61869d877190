// A multi-turn chat with a Llama 3 instruct model in the dialog format of spec §4.1. The KV cache lives
// across turns, so each turn feeds only its new tokens: the previous reply's end (<|eot_id|>), the user
// message, and the open assistant header. `history` holds every id the model has been given.
import { KVCache } from "../model/kvcache.js";
import type { Llama } from "../model/llama.js";
import { type ChatFormat, EOT, type Message } from "../tokenizer/index.js";
import { type GenerateResult, generate } from "./generate.js";
import type { SamplingOptions } from "./sampling.js";

export interface ChatOptions extends SamplingOptions {
  /** A system message opening the dialog. */
  system?: string;
  /** Reply length limit in tokens (default 512). */
  maxNewTokens?: number;
}

export class ChatSession {
  /** The dialog so far (assistant messages as decoded text). */
  readonly messages: Message[] = [];
  /** Every id fed to the model, in order (what the KV cache holds). */
  readonly history: number[] = [];
  private cache: KVCache;
  /** Ids chosen but not yet fed: the end of the last reply. */
  private pending: number[] = [];

  constructor(
    readonly model: Llama,
    readonly format: ChatFormat,
    readonly opts: ChatOptions = {},
  ) {
    this.cache = new KVCache(model.config, 1, 1024);
    if (opts.system !== undefined) this.messages.push({ role: "system", content: opts.system });
  }

  /** Ids the next user turn feeds. */
  private turnIds(user: Message): number[] {
    if (this.history.length === 0) return this.format.encodeDialogPrompt([...this.messages, user]);
    return [...this.pending, ...this.format.encodeMessage(user), ...this.format.encodeHeader("assistant")];
  }

  /** Answer one user message; text streams through onText. */
  reply(text: string, onText?: (t: string) => void): GenerateResult {
    const user: Message = { role: "user", content: text };
    const ids = this.turnIds(user);
    const eot = this.format.tokenizer.special(EOT);
    const stopIds = [...new Set([...this.format.stopIds(), ...this.model.config.eosTokenIds])];
    const codec = {
      name: this.format.tokenizer.name,
      decode: (x: readonly number[]) => this.format.tokenizer.decode(x),
      stream: () => this.format.tokenizer.streamDecoder(),
    };
    const r = generate(this.model, ids, {
      ...this.opts,
      maxNewTokens: this.opts.maxNewTokens ?? 512,
      stopIds,
      codec,
      cache: this.cache,
      ...(onText ? { onText } : {}),
    });
    this.messages.push(user, { role: "assistant", content: r.text });
    this.history.push(...ids);
    // The cache has seen every chosen token but the last; the reply must end with a stop id.
    this.history.push(...r.tokens.slice(0, r.finishReason === "stop_id" ? r.tokens.length : -1));
    if (r.finishReason === "stop_id") this.pending = [r.stopId!];
    else this.pending = r.unforwarded === null ? [eot] : [r.unforwarded, eot];
    return r;
  }

  /** Tokens the model has seen (the KV cache length). */
  get contextTokens(): number {
    return this.cache.length;
  }

  /** Start over (the system message stays). */
  reset(): void {
    this.cache.reset();
    this.history.length = 0;
    this.pending = [];
    this.messages.splice(this.opts.system !== undefined ? 1 : 0);
  }

  dispose(): void {
    this.cache.dispose();
  }
}
