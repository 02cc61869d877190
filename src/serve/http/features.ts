// The request features the HTTP layer takes from outside (src/serve/structured/, tools/, guard/ build
// them against src/serve/contracts.ts): `createServer({ engine, features })`. A request that needs an
// absent feature gets a clear 400. Structured output itself runs on the engine's thread (its constraint
// masks every sampling step), so here it is only a flag: the engine was started with a ConstraintFactory.
import type { GuardClassifier, ToolCallStream } from "../contracts.js";

/** A tool as the OpenAI API gives it. */
export interface OpenAITool {
  type: "function";
  function: { name: string; description?: string; parameters?: object };
}

export interface ServeFeatures {
  /** The engine builds `response_format` constraints (json_object, json_schema). */
  structuredOutput?: boolean;
  /** The Llama 3.1 custom-tool system prompt for these tools (joined to the request's system message). */
  toolsSystemPrompt?: (tools: readonly OpenAITool[]) => string;
  /** A parser of the streamed reply into content and tool calls. */
  toolStream?: (tools: readonly OpenAITool[]) => ToolCallStream;
  /** Llama Guard: user turns before generating, the reply before it is released. */
  guard?: GuardClassifier;
}

/** The JSON schema a forced tool call must match (`tool_choice: "required"` or a named function). */
export function toolCallSchema(tools: readonly OpenAITool[]): object {
  return {
    anyOf: tools.map((t) => ({
      type: "object",
      properties: {
        name: { enum: [t.function.name] },
        parameters: t.function.parameters ?? { type: "object" },
      },
      required: ["name", "parameters"],
    })),
  };
}
