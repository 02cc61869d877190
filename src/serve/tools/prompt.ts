// OpenAI chat messages and tools → the Llama 3.x dialog (src/tokenizer/chat.ts's Message list), and parsed
// tool calls → OpenAI's `tool_calls`. With tools, the system message gets Meta's "Environment: ipython"
// header and the tool definitions go where Meta's prompt formats put them: for Llama 3.1 JSON calls and
// <function> tags, a user message of their own before the first user turn; for Llama 3.2's pythonic list,
// the system message. An assistant message's `tool_calls` are written back as the model would have written
// them (<|python_tag|>…<|eom_id|> in the JSON format), and `role: tool` results go in as `ipython`.
import type { Message } from "../../tokenizer/chat.js";
import type { PyValue } from "../../tokenizer/python.js";
import {
  functionTagToolsPrompt,
  jsonToolsPrompt,
  pythonListToolsPrompt,
  systemPrompt,
  type ToolCall,
  type ToolDefinition,
  type ToolParam,
  type ToolPromptFormat,
} from "../../tokenizer/tools.js";
import type { OpenAITool, OpenAIToolCall, OpenAIToolCallDelta } from "./openai.js";

/** A chat-completions message as the request carries it (content may be a list of text parts). */
export interface OpenAIMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content?: string | { type: string; text?: string }[] | null;
  tool_calls?: OpenAIToolCall[];
  tool_call_id?: string;
  name?: string;
}

export interface ToolPromptOptions {
  /** How the model is asked to write calls: "json" (Llama 3.1, default), "function_tag", "python_list" (3.2). */
  format?: ToolPromptFormat;
  /** Adds Meta's "Cutting Knowledge Date … Today Date …" lines to the system message. */
  date?: Date | string;
}

/** JSON Schema type names as the Python names of Meta's <function> tag prompts ("int", "str" …). */
const PYTHON_TYPES: Record<string, string> = {
  integer: "int",
  string: "str",
  number: "float",
  boolean: "bool",
  array: "list",
  object: "dict",
  null: "None",
};

/**
 * OpenAI function definitions as Meta's ToolDefinition: parameter types are the JSON Schema type names, or
 * their Python names with `pythonTypes` (as the Llama 3.1 <function> tag examples write them).
 */
export function toolDefinitions(tools: readonly OpenAITool[], pythonTypes = false): ToolDefinition[] {
  return tools.map((t, i) => {
    const fn = t.function;
    if (!fn || typeof fn.name !== "string" || fn.name === "")
      throw new Error(`tools[${i}].function.name: a function needs a name`);
    const schema = (fn.parameters ?? {}) as { properties?: Record<string, unknown>; required?: unknown };
    const required = new Set(Array.isArray(schema.required) ? schema.required : []);
    const parameters: Record<string, ToolParam> = {};
    for (const [name, p] of Object.entries(schema.properties ?? {})) {
      const prop = (p ?? {}) as { type?: unknown; description?: unknown; default?: unknown };
      const type = Array.isArray(prop.type) ? prop.type[0] : prop.type;
      parameters[name] = {
        paramType: typeof type !== "string" ? "object" : pythonTypes ? (PYTHON_TYPES[type] ?? type) : type,
        ...(typeof prop.description === "string" ? { description: prop.description } : {}),
        required: required.has(name),
        ...(prop.default !== undefined ? { default: prop.default as PyValue } : {}),
      };
    }
    return { toolName: fn.name, ...(fn.description ? { description: fn.description } : {}), parameters };
  });
}

/** The text of a message's content (text parts joined). */
export function contentText(content: OpenAIMessage["content"], where: string): string {
  if (content === undefined || content === null) return "";
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) throw new Error(`${where}.content: must be a string or a list of parts`);
  return content
    .map((p, i) => {
      if (p?.type !== "text" || typeof p.text !== "string")
        throw new Error(`${where}.content[${i}]: only text parts are supported`);
      return p.text;
    })
    .join("");
}

/** The dialog the model sees for these messages and tools. */
export function chatMessages(
  messages: readonly OpenAIMessage[],
  tools: readonly OpenAITool[] = [],
  opts: ToolPromptOptions = {},
): Message[] {
  const format = opts.format ?? "json";
  const defs = toolDefinitions(tools, format === "function_tag");
  const out: Message[] = [];
  const systemTexts: string[] = [];
  let toolsPlaced = defs.length === 0 || format === "python_list";
  messages.forEach((m, i) => {
    const where = `messages[${i}]`;
    const text = contentText(m.content, where);
    switch (m.role) {
      case "system":
      case "developer":
        systemTexts.push(text);
        return;
      case "user":
        if (!toolsPlaced) {
          out.push({
            role: "user",
            content: format === "json" ? jsonToolsPrompt(defs) : functionTagToolsPrompt(defs),
          });
          toolsPlaced = true;
        }
        out.push({ role: "user", content: text });
        return;
      case "tool":
        out.push({ role: "tool", content: text });
        return;
      case "assistant": {
        const calls = (m.tool_calls ?? []).map((c, k) => fromOpenAIToolCall(c, `${where}.tool_calls[${k}]`));
        out.push({
          role: "assistant",
          content: text,
          ...(calls.length > 0
            ? { toolCalls: calls, stopReason: format === "json" ? "end_of_message" : "end_of_turn" }
            : {}),
        });
        return;
      }
      default:
        throw new Error(`${where}.role: unknown role '${(m as { role: unknown }).role}'`);
    }
  });
  const userSystem = systemTexts.length > 0 ? systemTexts.join("\n\n") : undefined;
  let system: string | undefined;
  if (defs.length > 0 && format === "python_list") {
    const text = pythonListToolsPrompt(defs) + (userSystem !== undefined ? `\n\n${userSystem}` : "");
    system = systemPrompt({ date: opts.date, text });
  } else if (defs.length > 0) system = systemPrompt({ customTools: true, date: opts.date, text: userSystem });
  else if (userSystem !== undefined || opts.date !== undefined)
    system = systemPrompt({ date: opts.date, text: userSystem });
  return system !== undefined ? [{ role: "system", content: system }, ...out] : out;
}

function fromOpenAIToolCall(c: OpenAIToolCall, where: string): ToolCall {
  if (c?.type !== "function" || typeof c.function?.name !== "string")
    throw new Error(`${where}: a tool call needs type "function" and a function name`);
  let args: unknown;
  try {
    args = JSON.parse(c.function.arguments || "{}");
  } catch {
    throw new Error(`${where}.function.arguments: not valid JSON`);
  }
  if (typeof args !== "object" || args === null || Array.isArray(args))
    throw new Error(`${where}.function.arguments: must be a JSON object`);
  return { toolName: c.function.name, arguments: args as Record<string, PyValue>, callId: c.id };
}

/** Parsed calls as an assistant message's `tool_calls`. */
export function toOpenAIToolCalls(calls: readonly ToolCall[]): OpenAIToolCall[] {
  return calls.map((c) => ({
    id: c.callId ?? "call_0",
    type: "function",
    function: { name: c.toolName, arguments: JSON.stringify(c.arguments) },
  }));
}

/** Parsed calls as streamed `delta.tool_calls` entries, numbered on from `firstIndex`. */
export function toolCallDeltas(calls: readonly ToolCall[], firstIndex: number): OpenAIToolCallDelta[] {
  return toOpenAIToolCalls(calls).map((c, k) => ({ index: firstIndex + k, ...c }));
}
