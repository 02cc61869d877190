// `herd chat --model DIR`: an interactive terminal chat with a Llama 3 instruct model in the dialog
// format (spec §4.1). Each reply streams as it is generated and ends with its tokens/s. Lines from a pipe
// work too (one user message per line). Commands: /reset starts over, /exit (or end of input) leaves.
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { ChatSession } from "../generate/chat.js";
import { codecFor } from "../generate/codec.js";
import { loadModel } from "../model/load.js";
import { ChatFormat } from "../tokenizer/index.js";
import { MODEL_HELP, MODEL_OPTIONS, rate, samplingFrom, UsageError } from "./modelArgs.js";

const HELP = `usage: herd chat --model DIR [options]

Type a message and press enter; /reset starts a new dialog, /exit leaves.

  --system TEXT       system message at the start of the dialog
${MODEL_HELP}`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { ...MODEL_OPTIONS, system: { type: "string" } },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  let session: ChatSession;
  try {
    if (!values.model) throw new UsageError("--model DIR is required");
    const sampling = samplingFrom(values);
    const model = await loadModel(values.model, { dtype: values.f32 ? "f32" : "keep" });
    const codec = codecFor(values.model, model.config.vocabSize, values.tokenizer);
    if (!codec?.tokenizer)
      throw new UsageError(
        `${values.model}: chat needs the Llama 3 tokenizer (its special tokens); this model has none`,
      );
    session = new ChatSession(model, new ChatFormat(codec.tokenizer), {
      ...sampling,
      ...(values.system !== undefined ? { system: values.system } : {}),
    });
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`herd chat: ${e.message}\n\n${HELP}\n`);
      return 2;
    }
    throw e;
  }

  const tty = process.stdin.isTTY === true;
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: tty });
  const ask = () => {
    if (tty) rl.prompt();
  };
  rl.setPrompt("you> ");
  if (tty) process.stdout.write(`herd chat · ${session.model.dtype} weights · /reset, /exit\n`);
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
    process.stdout.write("assistant> ");
    const r = session.reply(text, (t) => process.stdout.write(t));
    process.stdout.write(
      `\n[${r.tokens.length} tokens, ${rate(r.decodeTokens, r.decodeSeconds)}; prompt ${r.promptTokens} tokens, ${rate(
        r.promptTokens,
        r.prefillSeconds,
      )}; context ${session.contextTokens}${r.finishReason === "stop_id" ? "" : `; stopped: ${r.finishReason}`}]\n`,
    );
    ask();
  }
  rl.close();
  session.dispose();
  session.model.dispose();
  return 0;
}
