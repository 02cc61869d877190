// The OpenAI chat-completions shapes of tools and tool calls that the request features read and write
// (types only): a request's `tools` and `tool_choice`, an assistant message's `tool_calls`, and the
// streamed `delta.tool_calls` entries, which carry an index and arrive as one piece per call here.

export interface OpenAIFunction {
  name: string;
  description?: string;
  /** A JSON Schema of the arguments object. */
  parameters?: Record<string, unknown>;
  strict?: boolean | null;
}

export interface OpenAITool {
  type: "function";
  function: OpenAIFunction;
}

export type OpenAIToolChoice =
  | "none"
  | "auto"
  | "required"
  | { type: "function"; function: { name: string } };

export interface OpenAIToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** One entry of a streamed `delta.tool_calls`. */
export interface OpenAIToolCallDelta {
  index: number;
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}
