// `herd chat --model DIR`: an interactive terminal chat with a Llama 3 instruct model in the dialog
// format (spec §4.1). Each reply streams as it is generated and ends with its tokens/s. Lines from a pipe
// work too (one user message per line). Commands: /reset starts over, /exit (or end of input) leaves.
// When the dialog outgrows --context the oldest turns are dropped with a notice on stderr (the system
// message stays); a message too long even alone is refused with a notice, and the chat goes on.

import { createInterface } from "node:readline";
import { commandHelp, type Schema } from "../core/schema.js";
import { ChatSession, ContextFullError, DEFAULT_CONTEXT } from "../generate/chat.js";
import { codecFor } from "../generate/codec.js";
import { loadModel } from "../model/load.js";
import { loadAdapter } from "../posttrain/peft.js";
import { ChatFormat } from "../tokenizer/index.js";
import { parseCommand } from "./command.js";
import { MODEL_OPTIONS, rate, samplingFrom, UsageError } from "./modelArgs.js";

export const OPTIONS = {
  system: { type: "string", arg: "TEXT", doc: "system message at the start of the dialog" },
  context: {
    type: "integer",
    min: 1,
    defaultDoc: `the model's context, at most ${DEFAULT_CONTEXT}`,
    doc: "tokens of dialog kept; the oldest turns are dropped to leave a reply its room (--max-tokens, at most half)",
  },
  ...MODEL_OPTIONS,
} as const satisfies Schema;

export const HELP = commandHelp(
  "usage: herd chat --model DIR [options]",
  OPTIONS,
  "Type a message and press enter; /reset starts a new dialog, /exit leaves.",
);

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(OPTIONS, HELP, argv, { required: ["model"] });
  if (!parsed) return 0;
  const { values } = parsed;
  const sampling = samplingFrom(values);
  const context = values.context;
  const model = await loadModel(values.model, { dtype: values.f32 ? "f32" : "keep" });
  if (values.adapter) await loadAdapter(model, values.adapter);
  const max = model.config.maxPositionEmbeddings;
  if (context !== undefined && context > max)
    throw new UsageError(`--context ${context}: this model's context is ${max} tokens`);
  const codec = codecFor(values.model, model.config.vocabSize, values.tokenizer);
  if (!codec?.tokenizer)
    throw new UsageError(
      `${values.model}: chat needs the Llama 3 tokenizer (its special tokens); this model has none`,
    );
  const session = new ChatSession(model, new ChatFormat(codec.tokenizer), {
    ...sampling,
    ...(values.system !== undefined ? { system: values.system } : {}),
    ...(context !== undefined ? { contextTokens: context } : {}),
  });

  const tty = process.stdin.isTTY === true;
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: tty });
  const ask = () => {
    if (tty) rl.prompt();
  };
  rl.setPrompt("you> ");
  if (tty)
    process.stdout.write(
      `herd chat · ${session.model.dtype} weights · context ${session.contextTokens} tokens · /reset, /exit\n`,
    );
  ask();
  for await (const line of rl) {
    const text = line.trim();
    if (text === "/exit") break;
    if (text === "/reset") {
      session.reset();
      process.stdout.write("(new dialog)\n");
      ask();
      continue;
    }
    if (text === "") {
      ask();
      continue;
    }
    const dropped = (n: number) =>
      process.stderr.write(
        `[context: dropped the oldest ${n === 1 ? "turn" : `${n} turns`} to fit ${session.contextTokens} tokens; the system message is kept]\n`,
      );
    let started = false;
    const out = (t: string) => {
      if (!started) process.stdout.write("assistant> ");
      started = true;
      process.stdout.write(t);
    };
    let r: ReturnType<ChatSession["reply"]>;
    try {
      r = session.reply(text, out, dropped);
    } catch (e) {
      if (!(e instanceof ContextFullError)) throw e;
      process.stderr.write(
        `[not sent: ${e.message}; the conversation is unchanged: shorten the message, /reset, or use a larger --context]\n`,
      );
      ask();
      continue;
    }
    if (!started) process.stdout.write("assistant> ");
    process.stdout.write(
      `\n[${r.tokens.length} tokens, ${rate(r.decodeTokens, r.decodeSeconds)}; prompt ${r.promptTokens} tokens, ${rate(
        r.promptTokens,
        r.prefillSeconds,
      )}; context ${session.cachedTokens}/${session.contextTokens}${r.finishReason === "stop_id" ? "" : `; stopped: ${r.finishReason}`}]\n`,
    );
    if (r.finishReason === "context")
      process.stderr.write("[the reply filled the context; the next message drops the oldest turns]\n");
    ask();
  }
  rl.close();
  session.dispose();
  session.model.dispose();
  return 0;
}
