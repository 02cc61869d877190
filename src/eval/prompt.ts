// Prompts as lm-evaluation-harness builds them (api/task.py fewshot_context and build_qa_turn): an
// optional description as a system turn, then each few-shot example as a user turn (its text, followed
// by the target delimiter) and an assistant turn (its target, followed by the few-shot delimiter), then
// the document's own user turn, and for tasks with a generation prefix ("The best answer is") an open
// assistant turn holding it. A base model reads the turns as one string (each turn's content and its
// delimiter); an instruct model reads them in the Llama 3.1 dialog format, the examples as turns.
// Token hygiene, which decides scores: exactly one <|begin_of_text|> (the chat format's own, or the one
// prepended to plain text), no padding, the end ids stop generation (the caller's stop set).
import type { TextCodec } from "../generate/codec.js";
import { ChatFormat, type Message } from "../tokenizer/index.js";

export interface Turn {
  role: "system" | "user" | "assistant";
  content: string;
  /** Appended after the content when the turns are read as plain text. */
  delimiter: string;
}

export interface Shot {
  text: string;
  target: string;
}

export interface PromptSpec {
  /** A system turn first (MMLU's "The following are multiple choice questions…\n\n"). */
  description?: string;
  shots: readonly Shot[];
  text: string;
  /** The start of the answer, written into the assistant turn (mmlu_llama's "The best answer is"). */
  genPrefix?: string;
  /** Between a question and its answer (default " "). */
  targetDelimiter?: string;
  /** After each few-shot answer (default "\n\n"). */
  fewshotDelimiter?: string;
}

const endsSpace = (s: string) => /\s$/.test(s);
const startsSpace = (s: string) => /^\s/.test(s);

/** The harness's requires_delimiter: neither side has whitespace at the join. */
function needsDelimiter(prefix: string, suffix: string): boolean {
  return prefix !== "" && !(endsSpace(prefix) || startsSpace(suffix));
}

/** The harness's maybe_delimit. */
function delimit(prefix: string | undefined, suffix: string, delimiter = " "): string {
  if (!prefix) return suffix;
  if (!suffix) return prefix;
  return needsDelimiter(prefix, suffix) ? prefix + delimiter + suffix : prefix + suffix;
}

function qaTurn(
  q: string,
  a: string | null,
  genPrefix: string | undefined,
  tgt: string,
  few: string,
): Turn[] {
  const userDelim = a !== null && !genPrefix ? tgt : genPrefix && needsDelimiter(q, genPrefix) ? tgt : "";
  const turns: Turn[] = [{ role: "user", content: q, delimiter: userDelim }];
  if (a !== null) turns.push({ role: "assistant", content: delimit(genPrefix, a), delimiter: few });
  else if (genPrefix) turns.push({ role: "assistant", content: genPrefix, delimiter: "" });
  return turns;
}

export function buildTurns(p: PromptSpec): Turn[] {
  const tgt = p.targetDelimiter ?? " ";
  const few = p.fewshotDelimiter ?? "\n\n";
  const turns: Turn[] = [];
  if (p.description) turns.push({ role: "system", content: p.description, delimiter: "" });
  for (const s of p.shots) turns.push(...qaTurn(s.text, s.target, p.genPrefix, tgt, few));
  turns.push(...qaTurn(p.text, null, p.genPrefix, tgt, ""));
  return turns;
}

/** The turns as a base model reads them (the harness without a chat template). */
export function renderText(turns: readonly Turn[]): string {
  return turns.map((t) => t.content + t.delimiter).join("");
}

/**
 * Prompt ids: plain text after one BOS (base), or the Llama 3.1 dialog (chat: few-shot turns as turns,
 * the open assistant header, and a generation prefix continued inside the assistant turn).
 */
export function promptIds(
  turns: readonly Turn[],
  codec: TextCodec,
  bos: number | null,
  chat: boolean,
): number[] {
  if (!codec.encode) throw new Error(`tokenizer ${codec.name} cannot encode text`);
  if (!chat) return [...(bos === null ? [] : [bos]), ...codec.encode(renderText(turns))];
  if (!codec.tokenizer) throw new Error("the chat format needs the Llama 3 tokenizer (its special tokens)");
  const fmt = new ChatFormat(codec.tokenizer);
  const last = turns[turns.length - 1]!;
  const open = last.role === "assistant" ? last.content : null;
  const messages: Message[] = (open === null ? turns : turns.slice(0, -1)).map((t) => ({
    role: t.role,
    content: t.content.trim(), // as Meta's ChatFormat and the HF template strip each message
  }));
  return [...fmt.encodeDialogPrompt(messages), ...(open === null ? [] : codec.encode(open))];
}

/** The prompt as text with special tokens spelled out (for --log-samples). */
export function promptText(turns: readonly Turn[], codec: TextCodec, chat: boolean): string {
  if (!chat) return renderText(turns);
  return codec.decode(promptIds(turns, codec, null, true));
}
