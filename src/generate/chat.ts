// A multi-turn chat with a Llama 3 instruct model in the dialog format of spec §4.1. The KV cache lives
// across turns, so each turn feeds only its new tokens: the previous reply's end (<|eot_id|>), the user
// message, and the open assistant header. `history` holds every id the model has been given.
//
// The dialog is kept within `contextTokens` (by default the model's context, at most DEFAULT_CONTEXT):
// when the next turn would leave less than the reply's room (maxNewTokens, at most half the context), the
// oldest user/assistant turns are dropped (the system message stays) and the cache is rebuilt from the
// kept messages. A message that cannot fit even alone is refused with ContextFullError, and the
// conversation is left as it was. A reply that fills the context ends with finishReason "context".
import { KVCache } from "../model/kvcache.js";
import type { Llama } from "../model/llama.js";
import { type ChatFormat, EOT, type Message } from "../tokenizer/index.js";
import { type GenerateResult, generate } from "./generate.js";
import type { SamplingOptions } from "./sampling.js";

/** The context a chat keeps when none is given and the model's is longer (its KV cache is f32). */
export const DEFAULT_CONTEXT = 8192;

export interface ChatOptions extends SamplingOptions {
  /** A system message opening the dialog. */
  system?: string;
  /** Reply length limit in tokens (default 512). */
  maxNewTokens?: number;
  /** Tokens of dialog kept (default: the model's context, at most DEFAULT_CONTEXT). */
  contextTokens?: number;
}

export interface ChatReply extends GenerateResult {
  /** User/assistant turns dropped from the start of the dialog to make room for this one. */
  droppedTurns: number;
}

/** A message too long for the context even with every earlier turn dropped; nothing was changed. */
export class ContextFullError extends Error {
  constructor(
    /** Tokens the dialog would need: BOS, the system message, this message and the assistant header. */
    readonly tokens: number,
    readonly contextTokens: number,
  ) {
    super(
      `this message needs ${tokens} tokens with the system message and headers, and the context holds ${contextTokens}`,
    );
  }
}

export class ChatSession {
  /** The dialog the model sees (assistant messages as decoded text; dropped turns are gone). */
  readonly messages: Message[] = [];
  /** Every id fed to the model since the cache was last built, in order (what the KV cache holds). */
  readonly history: number[] = [];
  /** Tokens of dialog kept at most. */
  readonly contextTokens: number;
  private cache: KVCache;
  /** Ids chosen but not yet fed: the end of the last reply. */
  private pending: number[] = [];

  constructor(
    readonly model: Llama,
    readonly format: ChatFormat,
    readonly opts: ChatOptions = {},
  ) {
    const max = model.config.maxPositionEmbeddings;
    const ctx = opts.contextTokens ?? Math.min(max, DEFAULT_CONTEXT);
    if (!(Number.isInteger(ctx) && ctx >= 1 && ctx <= max))
      throw new RangeError(`chat: contextTokens ${ctx} must be an integer from 1 to the model's ${max}`);
    this.contextTokens = ctx;
    this.cache = new KVCache(model.config, 1, Math.min(ctx, 1024));
    if (opts.system !== undefined) this.messages.push({ role: "system", content: opts.system });
  }

  private get maxNewTokens(): number {
    return this.opts.maxNewTokens ?? 512;
  }

  /** Tokens kept free for a reply when turns are dropped. */
  private get replyRoom(): number {
    return Math.min(this.maxNewTokens, Math.floor(this.contextTokens / 2));
  }

  /**
   * The prompt of a rebuilt dialog: the system message, as many of the newest turns as leave the reply
   * its room, and `user`. Throws ContextFullError (changing nothing) when `user` does not fit alone.
   */
  private fit(user: Message): { ids: number[]; kept: Message[]; dropped: number } {
    const sys = this.messages[0]?.role === "system" ? [this.messages[0]] : [];
    const turns = this.messages.slice(sys.length);
    const base = this.format.encodeDialogPrompt([...sys, user]).length;
    if (base >= this.contextTokens) throw new ContextFullError(base, this.contextTokens);
    // Whole turns (a user message and its reply), newest first, while they leave the reply its room.
    let used = base;
    let from = turns.length;
    while (from >= 2) {
      const add =
        this.format.encodeMessage(turns[from - 2]!).length +
        this.format.encodeMessage(turns[from - 1]!).length;
      if (used + add + this.replyRoom > this.contextTokens) break;
      used += add;
      from -= 2;
    }
    const kept = [...sys, ...turns.slice(from)];
    return { ids: this.format.encodeDialogPrompt([...kept, user]), kept, dropped: from / 2 };
  }

  /**
   * Answer one user message; text streams through onText, and onDropped hears of dropped turns before
   * the reply starts. Throws ContextFullError for a message too long to fit (nothing changes then).
   */
  reply(text: string, onText?: (t: string) => void, onDropped?: (turns: number) => void): ChatReply {
    const user: Message = { role: "user", content: text };
    let ids =
      this.history.length === 0
        ? null
        : [...this.pending, ...this.format.encodeMessage(user), ...this.format.encodeHeader("assistant")];
    let dropped = 0;
    if (ids === null || this.cache.length + ids.length + this.replyRoom > this.contextTokens) {
      const f = this.fit(user);
      ids = f.ids;
      dropped = f.dropped;
      this.messages.splice(0, this.messages.length, ...f.kept);
      this.cache.reset();
      this.history.length = 0;
      this.pending = [];
      if (dropped > 0) onDropped?.(dropped);
    }
    const eot = this.format.tokenizer.special(EOT);
    const stopIds = [...new Set([...this.format.stopIds(), ...this.model.config.eosTokenIds])];
    const codec = {
      name: this.format.tokenizer.name,
      decode: (x: readonly number[]) => this.format.tokenizer.decode(x),
      stream: () => this.format.tokenizer.streamDecoder(),
    };
    const r = generate(this.model, ids, {
      ...this.opts,
      maxNewTokens: this.maxNewTokens,
      stopIds,
      codec,
      cache: this.cache,
      contextTokens: this.contextTokens,
      ...(onText ? { onText } : {}),
    });
    this.messages.push(user, { role: "assistant", content: r.text });
    this.history.push(...ids);
    // The cache has seen every chosen token but the last; the reply must end with a stop id.
    this.history.push(...r.tokens.slice(0, r.finishReason === "stop_id" ? r.tokens.length : -1));
    if (r.finishReason === "stop_id") this.pending = [r.stopId!];
    else this.pending = r.unforwarded === null ? [eot] : [r.unforwarded, eot];
    return { ...r, droppedTurns: dropped };
  }

  /** Tokens the model has seen (the KV cache length). */
  get cachedTokens(): number {
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
