// The request features the HTTP layer takes from outside (src/serve/structured/, tools/, guard/ build
// them against src/serve/contracts.ts): `createServer({ engine, features })`. A request that needs an
// absent feature gets a clear 400. Structured output itself runs on the engine's thread (its constraint
// masks every sampling step), so here it is only a flag: the engine was started with a ConstraintFactory.
import type { Message } from "../../tokenizer/chat.js";
import type { FunctionTool, GuardClassifier, ToolCallStream } from "../contracts.js";
import type { CodeInterpreter } from "../tools/codeInterpreter.js";

/** A tool as the OpenAI API gives it. */
/** A tool as the OpenAI API gives it. */
export type OpenAITool = FunctionTool;

export interface ServeFeatures {
  /** The engine builds `response_format` constraints (json_object, json_schema) and forced tool calls. */
  structuredOutput?: boolean;
  /**
   * The dialog for a request with tools: its OpenAI `messages` and `tools` as Meta's tool prompt places
   * them (system "Environment: ipython", the definitions, assistant tool_calls, `role: tool` as ipython).
   * Throws an Error naming the message field on bad input (a 400).
   */
  toolDialog?: (messages: readonly unknown[], tools: readonly OpenAITool[]) => Message[];
  /** A parser of the streamed reply into content and tool calls. */
  toolStream?: () => ToolCallStream;
  /** Llama Guard: user turns before generating, the reply before it is released. */
  guard?: GuardClassifier;
  /** The built-in code interpreter (`--code-interpreter`): runs `<|python_tag|>` code in the sandbox for
   * requests without tools of their own; see interpreterChoice.ts. */
  codeInterpreter?: CodeInterpreter;
}
