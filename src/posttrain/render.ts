// A dialog rendered to token ids with a tag per token (spec §4.1, §7.1–7.4), so that SFT's loss mask and
// DPO's formatting-token exclusion both come from one place. The ids are exactly what the tokenizer's
// ChatFormat encodes (each message is encoded by it and only cut into parts here):
//   CONTEXT  <|begin_of_text|>, and every token of system / user / tool (ipython) messages
//   HEADER   an assistant turn's <|start_header_id|>, role name, <|end_header_id|> and the "\n\n"
//   CONTENT  an assistant turn's body (with <|python_tag|> and tool-call text when it calls tools)
//   END      an assistant turn's <|eot_id|> / <|eom_id|>
// SFT supervises CONTENT and END (the model must learn to stop); DPO counts CONTENT only (the paper masks
// the formatting tokens out of both responses' log-probabilities). Assistant turns inside a preference
// pair's prompt are context: only the response is trained.
import type { ChatFormat, Message } from "../tokenizer/chat.js";

export const CONTEXT = 0;
export const HEADER = 1;
export const CONTENT = 2;
export const END = 3;

export interface Rendered {
  ids: number[];
  /** One of CONTEXT, HEADER, CONTENT, END per id. */
  tags: number[];
}

/** Append one message; `train` false renders an assistant message as context (a prompt's earlier turns). */
function pushMessage(chat: ChatFormat, m: Message, train: boolean, out: Rendered): void {
  const ids = chat.encodeMessage(m);
  if (m.role !== "assistant" || !train) {
    out.ids.push(...ids);
    out.tags.push(...ids.map(() => CONTEXT));
    return;
  }
  const header = chat.encodeHeader(m.role).length;
  ids.forEach((id, i) => {
    out.ids.push(id);
    out.tags.push(i < header ? HEADER : i === ids.length - 1 ? END : CONTENT);
  });
}

/** A whole dialog (BOS first): every assistant turn is trained (SFT). */
export function renderDialogTags(chat: ChatFormat, messages: readonly Message[]): Rendered {
  const out: Rendered = { ids: [chat.tokenizer.special("<|begin_of_text|>")], tags: [CONTEXT] };
  for (const m of messages) pushMessage(chat, m, true, out);
  return out;
}

/** A preference prompt (BOS, its messages as context); a response is rendered by renderResponse after it. */
export function renderPrompt(chat: ChatFormat, messages: readonly Message[]): Rendered {
  const out: Rendered = { ids: [chat.tokenizer.special("<|begin_of_text|>")], tags: [CONTEXT] };
  for (const m of messages) pushMessage(chat, m, false, out);
  return out;
}

/** A response (assistant messages, tool results between them as context), to follow a prompt. */
export function renderResponse(chat: ChatFormat, messages: readonly Message[]): Rendered {
  const out: Rendered = { ids: [], tags: [] };
  for (const m of messages) pushMessage(chat, m, true, out);
  return out;
}

/** Whether a tag is supervised by SFT (assistant content and its end-of-turn token). */
export function sftSupervised(tag: number): boolean {
  return tag === CONTENT || tag === END;
}

/** Whether a tag counts in DPO's and the reward model's response log-probabilities (content only). */
export function dpoCounted(tag: number): boolean {
  return tag === CONTENT;
}
