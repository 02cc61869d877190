// The seams between the serving engine and the request features layered on it (types only): a
// TokenConstraint restricts which token may come next (structured output, forced tool calls); a
// ToolCallStream turns streamed model text into content deltas and tool calls without ever releasing a
// call's text as content; a GuardClassifier judges a conversation with the Llama Guard 3 prompt. The
// engine (src/serve/engine/) and the HTTP layer (src/serve/http/) use only these types, and the features
// (src/serve/structured/, src/serve/tools/, src/serve/guard/) implement them, so each side is tested alone.
import type { ToolCall } from "../tokenizer/tools.js";

/**
 * A per-request automaton over the model's vocabulary. The engine calls `mask` before sampling each
 * token (ids whose entry is 0 get −∞ logits), then `accept` with the sampled id. A constraint must always
 * leave at least one id allowed; once `complete` is true the only allowed ids are the stop ids.
 */
export interface TokenConstraint {
  /** Allowed next ids: 1 allowed, 0 not; length = vocabulary size. */
  mask(): Uint8Array;
  /** Advances past a sampled id (one `mask` allowed). Throws if the id was not allowed. */
  accept(id: number): void;
  /** The text so far is a complete value (the schema is satisfied): the request may stop here. */
  readonly complete: boolean;
}

/** A function tool as OpenAI's API gives it (what a forced tool call is built from). */
export interface FunctionTool {
  type: "function";
  function: { name: string; description?: string; parameters?: object };
}

/** What the HTTP layer asks of structured output: a constraint for one request (throws on a bad schema). */
export interface ConstraintFactory {
  /** `response_format` of type json_object (schema null) or json_schema (its `schema`). */
  json(schema: object | null): TokenConstraint;
  /** `tool_choice` "required" (one call of any of `tools`): the Llama 3.1 JSON call shape. */
  toolCall?(tools: readonly FunctionTool[], choice: "required"): TokenConstraint | null;
}

/** Content and tool calls released so far by a ToolCallStream. */
export interface ToolStreamDelta {
  /** Text safe to show as content now (never part of a tool call). */
  content: string;
  /** Tool calls completed by this push (each released once). */
  calls: ToolCall[];
}

/** Incremental parser of a model's streamed reply into content and tool calls (all Llama 3.x shapes). */
export interface ToolCallStream {
  push(text: string): ToolStreamDelta;
  /** End of the reply: releases held-back text as content, or the calls it turned out to be. */
  end(): ToolStreamDelta;
}

export interface GuardVerdict {
  safe: boolean;
  /** Violated category codes (S1–S14), empty when safe. */
  categories: string[];
}

export interface GuardClassifier {
  /** Judges the last turn of a conversation (user turns: the prompt; assistant: the reply so far). */
  classify(turns: readonly { role: "user" | "assistant"; content: string }[]): Promise<GuardVerdict>;
}
