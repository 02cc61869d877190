// Llama Guard 3 as the server's safety layer (spec §4.4, §11.2): a GuardClassifier over a Llama model and
// its tokenizer that judges the last turn of a conversation — a user turn (the prompt) or an assistant
// reply so far — by greedy decoding of the guard prompt (src/tokenizer/guard.ts) and parsing the verdict.
// A subset of S1–S14 may be chosen: the prompt lists only those, and a category outside it does not count.
// An output that is not a verdict is treated as unsafe (fail closed): neither spec §4.4 nor §11 says what
// to do with one, and a safety layer that lets through what it could not judge is no layer; the refusal
// then names no category.
import { generate } from "../../generate/generate.js";
import type { Llama } from "../../model/llama.js";
import type { ChatFormat } from "../../tokenizer/chat.js";
import { encodeGuardPrompt, LLAMA_GUARD_3_CATEGORIES, parseGuardVerdict } from "../../tokenizer/guard.js";
import type { GuardClassifier, GuardVerdict } from "../contracts.js";

export interface GuardClassifierOptions {
  /** Category codes to judge (default all of S1–S14). */
  categories?: readonly string[];
  /** Tokens the verdict may take at most (default 16: "unsafe\nS1,S2,…" is short). */
  maxNewTokens?: number;
}

export interface JudgedVerdict extends GuardVerdict {
  /** The guard's raw output. */
  output: string;
  /** The output was not a Llama Guard verdict (and so counted unsafe). */
  malformed: boolean;
}

export class LlamaGuardClassifier implements GuardClassifier {
  private readonly categories: readonly string[] | undefined;
  private readonly maxNewTokens: number;

  constructor(
    private readonly model: Llama,
    private readonly chat: ChatFormat,
    opts: GuardClassifierOptions = {},
  ) {
    ({ categories: this.categories, maxNewTokens: this.maxNewTokens } = guardSettings(opts));
  }

  /** The ids the model is given for these turns. */
  prompt(turns: readonly { role: "user" | "assistant"; content: string }[]): number[] {
    return encodeGuardPrompt(this.chat, turns, this.categories ? { categories: this.categories } : {});
  }

  async classify(turns: readonly { role: "user" | "assistant"; content: string }[]): Promise<JudgedVerdict> {
    const r = generate(this.model, this.prompt(turns), {
      temperature: 0,
      maxNewTokens: this.maxNewTokens,
      stopIds: this.chat.stopIds(),
    });
    return verdictOf(this.chat.tokenizer.decode(r.tokens), this.categories);
  }
}

/** The options checked (every category one of S1–S14) with their defaults (16 verdict tokens). */
export function guardSettings(opts: GuardClassifierOptions): {
  categories: readonly string[] | undefined;
  maxNewTokens: number;
} {
  for (const c of opts.categories ?? [])
    if (!LLAMA_GUARD_3_CATEGORIES.some((k) => k.code === c)) throw new Error(`guard: no category ${c}`);
  return { categories: opts.categories, maxNewTokens: opts.maxNewTokens ?? 16 };
}

/** The verdict in a guard's output, counting only `categories` (all when absent); malformed = unsafe. */
export function verdictOf(output: string, categories?: readonly string[]): JudgedVerdict {
  let v: GuardVerdict;
  try {
    v = parseGuardVerdict(output);
  } catch {
    return { safe: false, categories: [], output, malformed: true };
  }
  if (v.safe || !categories) return { ...v, output, malformed: false };
  const kept = v.categories.filter((c) => categories.includes(c));
  if (v.categories.length > 0 && kept.length === 0)
    return { safe: true, categories: [], output, malformed: false };
  return { safe: false, categories: kept, output, malformed: false };
}

/** The reply that replaces unsafe input or output, naming the violated categories. */
export function refusalMessage(v: GuardVerdict, where: "input" | "output"): string {
  const names = v.categories.map((c) => {
    const k = LLAMA_GUARD_3_CATEGORIES.find((x) => x.code === c);
    return k ? `${c} ${k.name}` : c;
  });
  const what = where === "input" ? "The request" : "The reply";
  const why = names.length > 0 ? ` (${names.join(", ")})` : "";
  return `I can't help with that. ${what} was classified as unsafe by the safety guard${why}.`;
}
