// Post-training data from local JSONL files (issue #16's formats), one JSON object per line:
//   SFT, conversational: {"messages": [{"role": "system"|"user"|"assistant"|"tool"|"ipython", "content": …}]}
//     (OpenAI / HF chat layout; an assistant message's `tool_calls` — [{"function": {"name", "arguments"}}]
//     or [{"name", "arguments"}], arguments an object or its JSON text — become Llama 3.1 tool-call text;
//     calls to built-in tools end the turn with <|eom_id|>, as Meta's format does, others with <|eot_id|>)
//   SFT, pre-tokenised: {"input_ids": [...], "labels": [...]} (−100 = not trained; HF alignment, label i
//     is token i) or {"input_ids", "mask"|"assistant_masks"|"completion_mask": [0/1 ...]}
//   preference, conversational (TRL's layout): {"prompt": [messages], "chosen": [assistant messages],
//     "rejected": [...], "edited"?: [...]}
//   preference, pre-tokenised: {"prompt_ids", "chosen_ids", "rejected_ids", "edited_ids"?}: every response
//     token counts (without the dialog tags, formatting tokens cannot be told apart)
// Malformed input (bad JSON, a wrong type, an unknown role, an id outside the vocabulary, no trainable
// token) is an error naming the file, the line and the field. Input that is well formed but unusable —
// an empty assistant turn, identical chosen and rejected responses, a sequence longer than the context —
// is skipped, and every skip is returned with its line and reason for the caller to report: never dropped
// silently.
import { readFileSync } from "node:fs";
import type { ChatFormat, Message, Role } from "../tokenizer/chat.js";
import { isBuiltinTool, type ToolCall } from "../tokenizer/tools.js";
import { dpoCounted, renderDialogTags, renderPrompt, renderResponse, sftSupervised } from "./render.js";

export interface SftExample {
  line: number;
  ids: Int32Array;
  /** 1 where token i is trained (predicted from token i − 1). */
  supervised: Uint8Array;
}

export interface Response {
  ids: Int32Array;
  /** 1 where the token counts in the response's log-probability (DPO, reward model): content only. */
  counted: Uint8Array;
  /** 1 where SFT would train the token (content and end of turn): DPO's NLL term. */
  supervised: Uint8Array;
}

export interface PreferenceExample {
  line: number;
  prompt: Int32Array;
  chosen: Response;
  rejected: Response;
  edited?: Response;
}

export interface Skip {
  file: string;
  line: number;
  reason: string;
}

export interface Dataset<T> {
  file: string;
  examples: T[];
  skipped: Skip[];
}

export interface ReadOptions {
  /** The chat format for conversational lines (null: only pre-tokenised lines are accepted). */
  chat: ChatFormat | null;
  /** Ids must be below this. */
  vocabSize: number;
  /** Longest sequence (prompt + response) kept; longer ones are skipped. */
  maxLen: number;
}

type Obj = Record<string, unknown>;

/** A line-level error: `file:line: field 'f' …`. */
class LineError extends Error {}

const ROLES: readonly Role[] = ["system", "user", "assistant", "tool", "ipython"];
const MASK_FIELDS = ["mask", "assistant_masks", "completion_mask"] as const;

function jsonLines(file: string): { line: number; obj: Obj }[] {
  const out: { line: number; obj: Obj }[] = [];
  readFileSync(file, "utf8")
    .split("\n")
    .forEach((text, i) => {
      if (text.trim() === "") return;
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch (e) {
        throw new Error(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
      }
      if (typeof v !== "object" || v === null || Array.isArray(v))
        throw new Error(`${file}:${i + 1}: not a JSON object`);
      out.push({ line: i + 1, obj: v as Obj });
    });
  return out;
}

const bad = (field: string, what: string, got: unknown) =>
  new LineError(`field '${field}' ${what} (got ${JSON.stringify(got)?.slice(0, 80)})`);

function text(v: unknown, field: string): string {
  if (typeof v === "string") return v;
  // HF's multi-part content: [{"type": "text", "text": "…"}]
  if (Array.isArray(v) && v.every((p) => typeof p?.text === "string"))
    return v.map((p) => p.text as string).join("");
  throw bad(field, "must be a string", v);
}

function toolCalls(v: unknown, field: string): ToolCall[] {
  if (!Array.isArray(v)) throw bad(field, "must be a list", v);
  return v.map((c, i) => {
    const f = `${field}[${i}]`;
    const fn = (c?.function ?? c) as Obj;
    if (typeof fn?.name !== "string" || fn.name === "")
      throw bad(`${f}.function.name`, "must be a name", fn?.name);
    let args = fn.arguments ?? {};
    if (typeof args === "string") {
      try {
        args = JSON.parse(args);
      } catch {
        throw bad(`${f}.function.arguments`, "must be a JSON object or its text", args);
      }
    }
    if (typeof args !== "object" || args === null || Array.isArray(args))
      throw bad(`${f}.function.arguments`, "must be an object", args);
    return { toolName: fn.name, arguments: args as ToolCall["arguments"] };
  });
}

/** Messages of a list; `empty` collects the fields of empty assistant turns. */
function messages(v: unknown, field: string, empty: string[]): Message[] {
  if (!Array.isArray(v) || v.length === 0) throw bad(field, "must be a non-empty list of messages", v);
  return v.map((m, i) => {
    const f = `${field}[${i}]`;
    if (typeof m !== "object" || m === null) throw bad(f, "must be an object", m);
    const role = (m as Obj).role;
    if (!ROLES.includes(role as Role)) throw bad(`${f}.role`, `must be one of ${ROLES.join(", ")}`, role);
    const calls = (m as Obj).tool_calls;
    const out: Message = { role: role as Role, content: "" };
    if (calls !== undefined && calls !== null) {
      if (role !== "assistant") throw bad(`${f}.tool_calls`, "is for assistant messages only", role);
      out.toolCalls = toolCalls(calls, `${f}.tool_calls`);
      if (out.toolCalls.every((c) => isBuiltinTool(c.toolName))) out.stopReason = "end_of_message";
    }
    const content = (m as Obj).content;
    if (content !== undefined && (content !== null || !out.toolCalls))
      out.content = text(content, `${f}.content`);
    else if (!out.toolCalls) throw bad(`${f}.content`, "is missing", content);
    if (role === "assistant" && out.content.trim() === "" && !out.toolCalls?.length) empty.push(f);
    return out;
  });
}

function ids(v: unknown, field: string, vocab: number): Int32Array {
  if (!Array.isArray(v) || v.length === 0) throw bad(field, "must be a non-empty list of token ids", v);
  const out = new Int32Array(v.length);
  v.forEach((x, i) => {
    if (!Number.isInteger(x) || x < 0 || x >= vocab)
      throw bad(`${field}[${i}]`, `must be a token id in [0, ${vocab})`, x);
    out[i] = x;
  });
  return out;
}

function flags(tags: number[], keep: (t: number) => boolean): Uint8Array {
  return Uint8Array.from(tags, (t) => (keep(t) ? 1 : 0));
}

function needChat(o: ReadOptions): ChatFormat {
  if (!o.chat)
    throw new LineError("conversational line, but no tokenizer with the Llama 3 chat tokens was given");
  return o.chat;
}

function sftLine(obj: Obj, o: ReadOptions): SftExample | string {
  if (obj.messages !== undefined) {
    const empty: string[] = [];
    const msgs = messages(obj.messages, "messages", empty);
    if (!msgs.some((m) => m.role === "assistant"))
      throw new LineError("field 'messages' has no assistant turn: zero supervised tokens");
    if (empty.length > 0) return `empty assistant turn (${empty.join(", ")})`;
    const r = renderDialogTags(needChat(o), msgs);
    return { line: 0, ids: Int32Array.from(r.ids), supervised: flags(r.tags, sftSupervised) };
  }
  if (obj.input_ids === undefined) throw new LineError("needs 'messages' or 'input_ids'");
  const input = ids(obj.input_ids, "input_ids", o.vocabSize);
  const supervised = new Uint8Array(input.length);
  const maskField = MASK_FIELDS.find((f) => obj[f] !== undefined);
  const given = obj.labels ?? (maskField ? obj[maskField] : undefined);
  const field = obj.labels !== undefined ? "labels" : maskField;
  if (!field) throw new LineError(`'input_ids' needs 'labels' or one of ${MASK_FIELDS.join(", ")}`);
  if (!Array.isArray(given) || given.length !== input.length)
    throw bad(field, `must be a list of ${input.length} values, one per input id`, given);
  given.forEach((x, i) => {
    if (field === "labels") {
      if (x !== -100 && x !== input[i])
        throw bad(`labels[${i}]`, `must be −100 or input_ids[${i}] (${input[i]})`, x);
      supervised[i] = x === -100 ? 0 : 1;
    } else {
      if (x !== 0 && x !== 1 && x !== true && x !== false) throw bad(`${field}[${i}]`, "must be 0 or 1", x);
      supervised[i] = x === 1 || x === true ? 1 : 0;
    }
  });
  supervised[0] = 0; // the first token is predicted from nothing
  if (!supervised.includes(1)) throw new LineError(`field '${field}' marks no token: zero supervised tokens`);
  return { line: 0, ids: input, supervised };
}

/** Read an SFT JSONL file; errors name the file, line and field; skips are returned with their reasons. */
export function readSft(file: string, o: ReadOptions): Dataset<SftExample> {
  const out: Dataset<SftExample> = { file, examples: [], skipped: [] };
  for (const { line, obj } of jsonLines(file)) {
    let r: SftExample | string;
    try {
      r = sftLine(obj, o);
    } catch (e) {
      if (e instanceof LineError) throw new Error(`${file}:${line}: ${e.message}`);
      throw e;
    }
    if (typeof r !== "string" && r.ids.length > o.maxLen)
      r = `${r.ids.length} tokens, longer than the context of ${o.maxLen}`;
    if (typeof r === "string") out.skipped.push({ file, line, reason: r });
    else out.examples.push({ ...r, line });
  }
  if (out.examples.length === 0)
    throw new Error(`${file}: no usable dialog (${out.skipped.length} skipped, ${skipSummary(out.skipped)})`);
  return out;
}

function preferenceLine(obj: Obj, o: ReadOptions): PreferenceExample | string {
  const conversational = obj.prompt !== undefined;
  if (!conversational && obj.prompt_ids === undefined)
    throw new LineError(
      "needs 'prompt' with 'chosen'/'rejected', or 'prompt_ids' with 'chosen_ids'/'rejected_ids'",
    );
  const keys = (["chosen", "rejected", "edited"] as const).filter(
    (k) => obj[conversational ? k : `${k}_ids`] !== undefined,
  );
  if (!keys.includes("chosen") || !keys.includes("rejected"))
    throw new LineError(
      `needs both '${conversational ? "chosen" : "chosen_ids"}' and its rejected counterpart`,
    );
  let prompt: Int32Array;
  const responses: Partial<Record<(typeof keys)[number], Response>> = {};
  if (conversational) {
    const chat = needChat(o);
    const empty: string[] = [];
    const p = renderPrompt(chat, messages(obj.prompt, "prompt", empty));
    prompt = Int32Array.from(p.ids);
    for (const k of keys) {
      const msgs = messages(obj[k], k, empty);
      const notAssistant = msgs.findIndex(
        (m) => m.role !== "assistant" && m.role !== "tool" && m.role !== "ipython",
      );
      if (notAssistant >= 0)
        throw bad(
          `${k}[${notAssistant}].role`,
          "must be assistant (or a tool result)",
          msgs[notAssistant]!.role,
        );
      if (!msgs.some((m) => m.role === "assistant"))
        throw new LineError(`field '${k}' has no assistant message`);
      const r = renderResponse(chat, msgs);
      responses[k] = {
        ids: Int32Array.from(r.ids),
        counted: flags(r.tags, dpoCounted),
        supervised: flags(r.tags, sftSupervised),
      };
    }
    if (empty.length > 0) return `empty assistant turn (${empty.join(", ")})`;
  } else {
    prompt = ids(obj.prompt_ids, "prompt_ids", o.vocabSize);
    for (const k of keys) {
      const r = ids(obj[`${k}_ids`], `${k}_ids`, o.vocabSize);
      responses[k] = {
        ids: r,
        counted: new Uint8Array(r.length).fill(1),
        supervised: new Uint8Array(r.length).fill(1),
      };
    }
  }
  const same = (a: Response, b: Response) =>
    a.ids.length === b.ids.length && a.ids.every((x, i) => x === b.ids[i]);
  if (same(responses.chosen!, responses.rejected!)) return "chosen and rejected responses are identical";
  const longest = Math.max(...keys.map((k) => responses[k]!.ids.length));
  if (prompt.length + longest > o.maxLen)
    return `${prompt.length + longest} tokens (prompt + longest response), longer than the context of ${o.maxLen}`;
  const ex: PreferenceExample = { line: 0, prompt, chosen: responses.chosen!, rejected: responses.rejected! };
  // An edited response identical to the chosen one adds no ordering: it is left out.
  if (responses.edited && !same(responses.edited, responses.chosen!)) ex.edited = responses.edited;
  return ex;
}

/** Read a preference JSONL file; errors name the file, line and field; skips are returned with reasons. */
export function readPreferences(file: string, o: ReadOptions): Dataset<PreferenceExample> {
  const out: Dataset<PreferenceExample> = { file, examples: [], skipped: [] };
  for (const { line, obj } of jsonLines(file)) {
    let r: PreferenceExample | string;
    try {
      r = preferenceLine(obj, o);
    } catch (e) {
      if (e instanceof LineError) throw new Error(`${file}:${line}: ${e.message}`);
      throw e;
    }
    if (typeof r === "string") out.skipped.push({ file, line, reason: r });
    else out.examples.push({ ...r, line });
  }
  if (out.examples.length === 0)
    throw new Error(`${file}: no usable pair (${out.skipped.length} skipped, ${skipSummary(out.skipped)})`);
  return out;
}

/** "line 3: reason; line 9: reason" (the first few), for reports. */
export function skipSummary(skipped: readonly Skip[], max = 5): string {
  const head = skipped.slice(0, max).map((s) => `line ${s.line}: ${s.reason}`);
  if (skipped.length > max) head.push(`… ${skipped.length - max} more`);
  return head.join("; ") || "none";
}
