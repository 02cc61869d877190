// Streamed model text → content and tool calls, for every shape Llama 3.x writes a call in:
//   <function=name>{…}</function>               (3.1 user-defined tag format; the closing tag optional)
//   <|python_tag|>{"type": "function", "name": …, "parameters": {…}}   (3.1 JSON, several joined by ; or newlines)
//   <|python_tag|>brave_search.call(query="…")   (built-in tools) · <|python_tag|>code…  (code interpreter)
//   {"name": …, "parameters"|"arguments": …}     (bare JSON, at the start of the reply or of a line)
//   [fn(a=1), fn(b='x')]                          (3.2 pythonic list, at the start of a line)
// Text is held back while it could still be the start of a call and released as content once it cannot,
// so a call's text never reaches the content — leaking calls into content is the most reported tool bug
// of vLLM and llama.cpp. Every decision depends only on the text so far, never on how it was split into
// pushes: the content and calls are the same however the reply arrives. Whitespace right around a call is
// dropped; everything else is released verbatim. The engine pushes decoded text with special tokens
// spelled out (<|python_tag|>) and without the stop token.
import { randomUUID } from "node:crypto";
import type { PyValue } from "../../tokenizer/python.js";
import { parsePythonCallList } from "../../tokenizer/python.js";
import { PYTHON_TAG } from "../../tokenizer/specialTokens.js";
import { isBuiltinTool, type ToolCall } from "../../tokenizer/tools.js";
import type { ToolCallStream, ToolStreamDelta } from "../contracts.js";

const FUNCTION_OPEN = "<function=";
const FUNCTION_CLOSE = "</function>";
const BUILTIN_CALL = /(?<![\p{L}\p{N}_])([\p{L}\p{N}_]+)\.call\(query="([^"]*)"\)/gu;
const MAX_NAME = 256;

type Try = { kind: "need" } | { kind: "no" } | { kind: "call"; calls: ToolCall[]; used: number };
const NEED: Try = { kind: "need" };
const NO: Try = { kind: "no" };

export class LlamaToolCallStream implements ToolCallStream {
  private buf = "";
  /** The start of buf is the start of the reply or of a line. */
  private lineStart = true;
  /** The start of buf follows a call (separators `;` and whitespace are dropped there). */
  private afterCall = false;
  private ended = false;

  constructor(private readonly newId: () => string = () => `call_${randomUUID().replace(/-/g, "")}`) {}

  push(text: string): ToolStreamDelta {
    if (this.ended) throw new Error("tool-call stream: push after end");
    this.buf += text;
    return this.run(false);
  }

  end(): ToolStreamDelta {
    if (this.ended) return { content: "", calls: [] };
    const out = this.run(true);
    this.ended = true;
    return out;
  }

  private run(final: boolean): ToolStreamDelta {
    let content = "";
    const calls: ToolCall[] = [];
    for (;;) {
      const buf = this.buf;
      let ws = 0;
      while (ws < buf.length && (/\s/.test(buf[ws]!) || (this.afterCall && buf[ws] === ";"))) ws++;
      const rest = buf.slice(ws);
      if (rest === "") {
        if (final) {
          if (!this.afterCall) content += buf;
          this.buf = "";
        }
        break;
      }
      const lineStart = this.lineStart || this.afterCall || buf.slice(0, ws).includes("\n");
      const t = tryCall(rest, final, lineStart);
      if (t.kind === "need") break; // hold everything: it may still become a call
      if (t.kind === "call") {
        for (const c of t.calls) calls.push({ ...c, callId: this.newId() });
        this.buf = rest.slice(t.used);
        this.afterCall = true;
        continue;
      }
      // not a call: release text up to the next place a call could begin, holding trailing whitespace
      let p = rest.length;
      for (const ch of ["<", "\n"]) {
        const i = rest.indexOf(ch, 1);
        if (i >= 0 && i < p) p = i;
      }
      let chunk = rest.slice(0, p);
      const trimmed = chunk.replace(/\s+$/, "");
      if (trimmed.length < chunk.length && !final) chunk = trimmed;
      content += (this.afterCall ? "" : buf.slice(0, ws)) + chunk;
      this.buf = rest.slice(chunk.length);
      this.lineStart = false;
      this.afterCall = false;
    }
    return { content, calls };
  }
}

/** Whether `rest` (starting with a non-space character) begins a call, may still, or does not. */
function tryCall(rest: string, final: boolean, lineStart: boolean): Try {
  if (rest.startsWith(PYTHON_TAG)) return pythonTag(rest, final);
  if (rest.startsWith(FUNCTION_OPEN)) return functionTag(rest, final);
  if (!final && (PYTHON_TAG.startsWith(rest) || FUNCTION_OPEN.startsWith(rest))) return NEED;
  if (lineStart && rest[0] === "{") return jsonCall(rest, 0, final, false);
  if (lineStart && rest[0] === "[") return pythonList(rest, final);
  return NO;
}

/** `{"name": …, "parameters": …}` (or "arguments", or with "type": "function") starting at `at`. */
function jsonCall(s: string, at: number, final: boolean, tagged: boolean): Try {
  const head = /^\{\s*(?:"((?:[^"\\]|\\.)*)("?))?/.exec(s.slice(at))!;
  const after = at + head[0].length;
  if (head[1] === undefined) {
    // nothing but `{` and spaces yet, or something other than a key
    return after === s.length && !final ? NEED : NO;
  }
  if (head[2] === "") return !final && ("name".startsWith(head[1]) || "type".startsWith(head[1])) ? NEED : NO;
  if (head[1] !== "name" && head[1] !== "type") return NO;
  const end = scanObject(s, at);
  if (end < 0) return final ? NO : NEED;
  let obj: unknown;
  try {
    obj = JSON.parse(s.slice(at, end));
  } catch {
    return NO;
  }
  const call = asCall(obj, tagged);
  return call ? { kind: "call", calls: [call], used: end } : NO;
}

function asCall(obj: unknown, tagged: boolean): ToolCall | null {
  if (!isRecord(obj) || typeof obj.name !== "string" || obj.name === "") return null;
  if (obj.type !== undefined && obj.type !== "function") return null;
  let args = obj.parameters ?? obj.arguments;
  if (args === undefined && !tagged && obj.type !== "function") return null;
  if (typeof args === "string") {
    try {
      args = JSON.parse(args);
    } catch {
      return null;
    }
  }
  args ??= {};
  if (!isRecord(args)) return null;
  return builtinQuery({ toolName: obj.name, arguments: args as Record<string, PyValue> });
}

/** `<|python_tag|>` then JSON calls, a built-in `x.call(query="…")`, or code for the interpreter. */
function pythonTag(s: string, final: boolean): Try {
  let i = PYTHON_TAG.length;
  while (i < s.length && /\s/.test(s[i]!)) i++;
  if (s[i] === "{") {
    const t = jsonCall(s, i, final, true);
    if (t.kind !== "no") return t;
  }
  if (!final) return NEED; // code or a built-in call: the rest of the reply
  const body = s.slice(PYTHON_TAG.length);
  const builtins = [...body.matchAll(BUILTIN_CALL)].map(
    (m): ToolCall => ({ toolName: m[1]!, arguments: { query: m[2]! } }),
  );
  if (builtins.length > 0) return { kind: "call", calls: builtins, used: s.length };
  return {
    kind: "call",
    calls: [{ toolName: "code_interpreter", arguments: { code: body } }],
    used: s.length,
  };
}

/** `<function=name>{…}</function>`. */
function functionTag(s: string, final: boolean): Try {
  const gt = s.indexOf(">", FUNCTION_OPEN.length);
  const name = s.slice(FUNCTION_OPEN.length, gt < 0 ? undefined : gt);
  if (!/^[^\s<>{}]*$/.test(name) || name.length > MAX_NAME) return NO;
  if (gt < 0) return final ? NO : NEED;
  if (name === "") return NO;
  const at = gt + 1;
  if (at === s.length) return final ? NO : NEED;
  if (s[at] !== "{") return NO;
  const end = scanObject(s, at);
  if (end < 0) return final ? NO : NEED;
  const text = s.slice(at, end);
  const args = tryJson(text) ?? tryJson(text.replace(/'/g, '"'));
  if (!isRecord(args)) return NO;
  const tail = s.slice(end);
  if (!final && FUNCTION_CLOSE.startsWith(tail)) return NEED; // the closing tag may follow
  const used = tail.startsWith(FUNCTION_CLOSE) ? end + FUNCTION_CLOSE.length : end;
  return {
    kind: "call",
    calls: [builtinQuery({ toolName: name, arguments: args as Record<string, PyValue> })],
    used,
  };
}

/** Llama 3.2's `[fn(a=1), g(b='x')]`. */
function pythonList(s: string, final: boolean): Try {
  if (!/^\[\s*(?:[A-Za-z_][\w.]*(?:\s*\([\s\S]*)?)?$/.test(s.slice(0, Math.max(2, boundedEnd(s))))) return NO;
  const end = scanBalanced(s, 0, "[", "]", "'\"");
  if (end < 0) return final ? NO : NEED;
  const list = parsePythonCallList(s.slice(0, end));
  if (!list || list.length === 0) return NO;
  return {
    kind: "call",
    calls: list.map((c) => builtinQuery({ toolName: c.name, arguments: c.args })),
    used: end,
  };
}

/** Where the head check of a pythonic list stops: at its first `(`, or all of it. */
function boundedEnd(s: string): number {
  const i = s.indexOf("(");
  return i < 0 ? s.length : i + 1;
}

/** A built-in tool called in a custom format takes its first argument as the query (as Meta's parser). */
function builtinQuery(c: ToolCall): ToolCall {
  if (isBuiltinTool(c.toolName) && c.toolName !== "code_interpreter")
    return { toolName: c.toolName, arguments: { query: Object.values(c.arguments)[0] ?? "" } };
  return c;
}

/** Index just after the `}` closing the object opened at `at` (strings respected), or -1. */
export function scanObject(s: string, at: number): number {
  return scanBalanced(s, at, "{[", "}]", '"');
}

function scanBalanced(s: string, at: number, open: string, close: string, quotes: string): number {
  let depth = 0;
  let quote = "";
  for (let i = at; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = "";
    } else if (quotes.includes(c)) quote = c;
    else if (open.includes(c)) depth++;
    else if (close.includes(c) && --depth === 0) return i + 1;
  }
  return -1;
}

function tryJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
