// The Llama 3.1/3.2 dialog format (spec §4.1), as Meta's ChatFormat encodes it:
//   <|begin_of_text|> then per message <|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>
//   (<|eom_id|> when an assistant message stops for a tool result), then the open assistant header.
// Role names and content are ordinary text (special-token text inside content stays text); the special
// ids are inserted here. An assistant message with tool calls gets <|python_tag|> before its body
// (except in the <function> tag format, where the model writes none). "tool" is rendered as "ipython".
// Llama 3.2 text models use the same dialog format; they differ in the tool-call format (python_list).
import {
  BEGIN_OF_TEXT,
  END_HEADER,
  END_OF_TEXT,
  EOM,
  EOT,
  PYTHON_TAG,
  START_HEADER,
} from "./specialTokens.js";
import type { Tokenizer } from "./tiktoken.js";
import {
  encodeToolCalls,
  type ParsedAssistant,
  parseAssistantOutput,
  type StopReason,
  type ToolCall,
  type ToolPromptFormat,
} from "./tools.js";

export type Role = "system" | "user" | "assistant" | "ipython" | "tool";

export interface Message {
  role: Role;
  content: string;
  /** assistant: calls made by this message */
  toolCalls?: ToolCall[];
  /** assistant: "end_of_message" ends it with <|eom_id|> (a tool result is awaited) */
  stopReason?: StopReason;
  /** user: retrieved context appended after a blank line (Meta's RAG field) */
  context?: string;
}

export interface ChatOptions {
  /** How custom tool calls in assistant messages are written (default "json", Llama 3.1). */
  toolPromptFormat?: ToolPromptFormat;
}

export class ChatFormat {
  private readonly format: ToolPromptFormat;

  constructor(
    readonly tokenizer: Tokenizer,
    opts: ChatOptions = {},
  ) {
    this.format = opts.toolPromptFormat ?? "json";
  }

  /** <|start_header_id|>{role}<|end_header_id|>\n\n */
  encodeHeader(role: Role): number[] {
    const t = this.tokenizer;
    return [t.special(START_HEADER), ...t.encode(roleName(role)), t.special(END_HEADER), ...t.encode("\n\n")];
  }

  /** One message: header, body, <|eot_id|> or <|eom_id|>. */
  encodeMessage(m: Message): number[] {
    const t = this.tokenizer;
    const out = this.encodeHeader(m.role);
    const calls = m.role === "assistant" ? (m.toolCalls ?? []) : [];
    if (calls.length > 0 && this.format !== "function_tag") out.push(t.special(PYTHON_TAG));
    out.push(...t.encode(m.content));
    if (m.role === "user" && m.context !== undefined) out.push(...t.encode("\n\n"), ...t.encode(m.context));
    if (calls.length > 0) out.push(...t.encode(encodeToolCalls(calls, this.format)));
    out.push(t.special(m.role === "assistant" && m.stopReason === "end_of_message" ? EOM : EOT));
    return out;
  }

  /** A whole dialog; by default ends with the open assistant header for the model to complete. */
  encodeDialogPrompt(messages: readonly Message[], opts: { addGenerationPrompt?: boolean } = {}): number[] {
    const out = [this.tokenizer.special(BEGIN_OF_TEXT)];
    for (const m of messages) out.push(...this.encodeMessage(m));
    if (opts.addGenerationPrompt ?? true) out.push(...this.encodeHeader("assistant"));
    return out;
  }

  /** The assistant message in generated ids (special tokens included, up to and with the stop token). */
  decodeAssistantMessage(ids: readonly number[], stopReason: StopReason = "out_of_tokens"): ParsedAssistant {
    return parseAssistantOutput(this.tokenizer.decode(ids), stopReason);
  }

  /** Ids that end an instruct model's turn (<|eot_id|>, <|eom_id|>) or a base model's text. */
  stopIds(): number[] {
    const t = this.tokenizer;
    return [t.special(EOT), t.special(EOM), t.special(END_OF_TEXT)];
  }
}

/** The dialog as text with special tokens spelled out (what decode(encodeDialogPrompt(...)) gives). */
export function renderDialog(
  chat: ChatFormat,
  messages: readonly Message[],
  addGenerationPrompt = true,
): string {
  return chat.tokenizer.decode(chat.encodeDialogPrompt(messages, { addGenerationPrompt }));
}

function roleName(role: Role): string {
  return role === "tool" ? "ipython" : role;
}
