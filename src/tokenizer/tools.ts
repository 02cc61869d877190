// Llama 3.1/3.2 tool calling (spec §4.2–4.3): the system-prompt switches for built-in tools, the prompts
// that describe custom tools (Meta's JSON, <function> tag and Llama 3.2 pythonic formats), how a tool
// call is written into an assistant message, and the parser that turns a model's raw output into a
// message with tool calls (Meta's ChatFormat.decode_assistant_message_from_content, extended to the
// several calls a Llama 3.2 list may hold). Texts reproduce Meta's prompt_format.md examples byte for byte.
import { type PyValue, parsePythonCallList, pyJsonDumps, pyLiteral } from "./python.js";
import { EOM, EOT, PYTHON_TAG } from "./specialTokens.js";

export const BUILTIN_TOOLS = ["brave_search", "wolfram_alpha", "photogen", "code_interpreter"] as const;
export type BuiltinTool = (typeof BUILTIN_TOOLS)[number];

/** How custom tool calls are written: 3.1 JSON, 3.1 user-defined <function> tag, 3.2 Python list. */
export type ToolPromptFormat = "json" | "function_tag" | "python_list";

export interface ToolCall {
  toolName: string;
  arguments: Record<string, PyValue>;
  callId?: string;
}

export interface ToolParam {
  paramType: string;
  description?: string;
  required?: boolean;
  default?: PyValue;
}

export interface ToolDefinition {
  toolName: string;
  description?: string;
  parameters?: Record<string, ToolParam>;
}

export type StopReason = "end_of_turn" | "end_of_message" | "out_of_tokens";

export function isBuiltinTool(name: string): name is BuiltinTool {
  return (BUILTIN_TOOLS as readonly string[]).includes(name);
}

export interface SystemPromptOptions {
  /** Built-in tools to switch on (code_interpreter alone gives "Environment: ipython"). */
  builtinTools?: readonly BuiltinTool[];
  /** Whether custom tools are offered (they also switch on "Environment: ipython"). */
  customTools?: boolean;
  /** "Cutting Knowledge Date … Today Date …" lines: a Date, or the date text ("21 September 2024"). */
  date?: Date | string;
  /** Free system text after the header lines. */
  text?: string;
}

const MONTHS = "January February March April May June July August September October November December".split(
  " ",
);

/** strftime("%d %B %Y"). */
export function formatPromptDate(d: Date): string {
  return `${String(d.getDate()).padStart(2, "0")} ${MONTHS[d.getMonth()]} ${d.getFullYear()}`;
}

/** The system message of a Llama 3.1 tool-using conversation. */
export function systemPrompt(o: SystemPromptOptions): string {
  let s = "";
  const builtins = o.builtinTools ?? [];
  if (builtins.length > 0 || o.customTools) {
    s += "Environment: ipython\n";
    const listed = builtins.filter((t) => t !== "code_interpreter");
    s += listed.length > 0 ? `Tools: ${listed.join(", ")}\n` : "\n";
  }
  if (o.date !== undefined) {
    const date = typeof o.date === "string" ? o.date : formatPromptDate(o.date);
    s += `Cutting Knowledge Date: December 2023\nToday Date: ${date}\n`;
  }
  if (o.text !== undefined) s += s ? `\n${o.text}` : o.text;
  return s;
}

/** Llama 3.1 zero-shot custom tools in JSON (a user message). */
export function jsonToolsPrompt(tools: readonly ToolDefinition[]): string {
  const defs = tools.map((t) => {
    const params = t.parameters ?? {};
    const required = Object.keys(params).filter((k) => params[k]!.required);
    const obj = {
      type: "function",
      function: {
        name: t.toolName,
        description: t.description ?? "",
        parameters: {
          type: "object",
          properties: Object.entries(params).map(([name, p]) => ({
            [name]: { type: "object", description: p.description ?? "" },
          })),
          required: "\u0000REQUIRED\u0000",
        },
      },
    };
    return JSON.stringify(obj, null, 4).replace('"\\u0000REQUIRED\\u0000"', pyJsonDumps(required));
  });
  return [
    "Answer the user's question by making use of the following functions if needed.",
    "If none of the function can be used, please say so.",
    "Here is a list of functions in JSON format:",
    ...defs,
    "",
    "Return function calls in JSON format.",
  ].join("\n");
}

/** Llama 3.1 user-defined <function=name>{…}</function> format (a user message). */
export function functionTagToolsPrompt(tools: readonly ToolDefinition[]): string {
  let s = "You have access to the following functions:\n\n";
  for (const t of tools) {
    const params: Record<string, unknown> = {};
    for (const [name, p] of Object.entries(t.parameters ?? {})) {
      params[name] = {
        description: p.description ?? null,
        param_type: p.paramType,
        required: p.required ?? true,
      };
    }
    const desc = t.description ?? "";
    const tparams = pyJsonDumps(params, { sortKeys: true, htmlSafe: true });
    s += `Use the function '${t.toolName}' to '${desc}':\n`;
    s += `{"name": "${t.toolName}", "description": "${desc}", "parameters": ${tparams}}\n\n`;
  }
  return `${s}Think very carefully before calling functions.
If you choose to call a function ONLY reply in the following format with no prefix or suffix:

<function=example_function_name>{"example_name": "example_value"}</function>

Reminder:
- If looking for real time information use relevant functions before falling back to brave_search
- Function calls MUST follow the specified format, start with <function= and end with </function>
- Required parameters MUST be specified
- Only call one function at a time
- Put the entire function call reply on one line`;
}

/** Llama 3.2 pythonic tool calling (a system message): the reply is a list of calls. */
export function pythonListToolsPrompt(tools: readonly ToolDefinition[]): string {
  const defs = tools.map((t) => {
    const params = t.parameters ?? {};
    const properties: Record<string, unknown> = {};
    for (const [name, p] of Object.entries(params)) {
      properties[name] = {
        type: p.paramType,
        description: p.description ?? "",
        ...(p.default !== undefined && p.default !== null && p.default !== ""
          ? { default: String(p.default) }
          : {}),
      };
    }
    return {
      name: t.toolName,
      description: t.description ?? "",
      parameters: {
        type: "dict",
        required: Object.keys(params).filter((k) => params[k]!.required),
        properties,
      },
    };
  });
  return `You are an expert in composing functions. You are given a question and a set of possible functions.
Based on the question, you will need to make one or more function/tool calls to achieve the purpose.
If none of the function can be used, point it out. If the given question lacks the parameters required by the function,
also point it out. You should only return the function call in tools call sections.

If you decide to invoke any of the function(s), you MUST put it in the format of [func_name1(params_name1=params_value1, params_name2=params_value2...), func_name2(params)]
You SHOULD NOT include any other text in the response.

Here is a list of functions in JSON format that you can invoke.

${JSON.stringify(defs, null, 4)}`;
}

/** The text of tool calls inside an assistant message (after <|python_tag|> except for function_tag). */
export function encodeToolCalls(calls: readonly ToolCall[], format: ToolPromptFormat): string {
  if (format === "python_list" && calls.every((c) => !isBuiltinTool(c.toolName))) {
    const one = (c: ToolCall) =>
      `${c.toolName}(${Object.entries(c.arguments)
        .map(([k, v]) => `${k}=${pyLiteral(v)}`)
        .join(", ")})`;
    return `[${calls.map(one).join(", ")}]`;
  }
  return calls.map((c) => encodeToolCall(c, format)).join("");
}

/** One tool call as Meta's ToolUtils.encode_tool_call writes it. */
export function encodeToolCall(c: ToolCall, format: ToolPromptFormat): string {
  switch (c.toolName) {
    case "brave_search":
    case "wolfram_alpha":
    case "photogen":
      return `${c.toolName}.call(query="${String(c.arguments.query ?? "")}")`;
    case "code_interpreter":
      return String(c.arguments.code ?? "");
  }
  if (format === "function_tag") return `<function=${c.toolName}>${pyJsonDumps(c.arguments)}</function>`;
  if (format === "python_list") return encodeToolCalls([c], format);
  return pyJsonDumps({ type: "function", name: c.toolName, parameters: c.arguments });
}

/** An assistant message recovered from raw model output. */
export interface ParsedAssistant {
  content: string;
  toolCalls: ToolCall[];
  stopReason: StopReason;
  /** The output began with <|python_tag|>. */
  pythonTag: boolean;
}

const HEADER = "<|start_header_id|>assistant<|end_header_id|>\n\n";
const BUILTIN_CALL = /(?<![\p{L}\p{N}_])([\p{L}\p{N}_]+)\.call\(query="([^"]*)"\)/u;
const FUNCTION_TAG = /<function=([^}]+)>(\{.*?\})/;

/** Parses a model's raw output (text with special tokens spelled out) into content and tool calls. */
export function parseAssistantOutput(raw: string, stopReason: StopReason = "out_of_tokens"): ParsedAssistant {
  let content = raw.replace(/^ +| +$/g, "");
  if (content.startsWith(HEADER)) content = content.slice(HEADER.length);
  const pythonTag = content.startsWith(PYTHON_TAG);
  if (pythonTag) content = content.slice(PYTHON_TAG.length);
  if (content.endsWith(EOT)) {
    content = content.slice(0, -EOT.length);
    stopReason = "end_of_turn";
  } else if (content.endsWith(EOM)) {
    content = content.slice(0, -EOM.length);
    stopReason = "end_of_message";
  }
  const calls = extractCustomToolCalls(content) ?? extractBuiltinToolCall(content, pythonTag);
  if (calls && calls.length > 0) return { content: "", toolCalls: calls, stopReason, pythonTag };
  return { content, toolCalls: [], stopReason, pythonTag };
}

function extractCustomToolCalls(content: string): ToolCall[] | null {
  let calls: ToolCall[] | null = null;
  const tag = FUNCTION_TAG.exec(content);
  if (tag) {
    const args = tryJson(tag[2]!.replace(/'/g, '"'));
    if (isObject(args)) calls = [{ toolName: tag[1]!, arguments: args }];
  } else {
    const obj = tryJson(content);
    if (isObject(obj)) {
      if ((obj.type === "function" || "name" in obj) && typeof obj.name === "string") {
        const params = obj.parameters ?? obj.arguments ?? {};
        calls = [{ toolName: obj.name, arguments: isObject(params) ? params : {} }];
      }
    } else {
      const list = parsePythonCallList(content);
      if (list && list.length > 0) calls = list.map((c) => ({ toolName: c.name, arguments: c.args }));
    }
  }
  // a built-in tool called in a custom format takes its first argument as the query
  return (
    calls?.map((c) =>
      isBuiltinTool(c.toolName) && c.toolName !== "code_interpreter"
        ? { toolName: c.toolName, arguments: { query: Object.values(c.arguments)[0] ?? "" } }
        : c,
    ) ?? null
  );
}

function extractBuiltinToolCall(content: string, pythonTag: boolean): ToolCall[] | null {
  const m = BUILTIN_CALL.exec(content);
  if (m) return [{ toolName: m[1]!, arguments: { query: m[2]! } }];
  if (pythonTag) return [{ toolName: "code_interpreter", arguments: { code: content } }];
  return null;
}

function tryJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, PyValue> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
