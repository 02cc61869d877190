// One chat choice with the built-in code interpreter (`herd serve --code-interpreter`): rounds of
// startChoice. A round whose reply is one `<|python_tag|>` code call ended by `<|eom_id|>` has its code run
// in the sandbox (tools/codeInterpreter.ts); the prompt then goes on with the assistant's call as the model
// wrote it, the `ipython` result and a new assistant header, and the model continues. At most
// `interpreter.rounds` runs; a code call after that (or one ended otherwise than by <|eom_id|>, or any
// other tool call) is returned as a tool call, as without the interpreter. The client's token budget
// (`maxTokens`) counts all rounds' tokens. The sink hears every round's content, and each call twice via
// `codeCall` (status "interpreting" before the run, then the result); the result joins the rounds: their
// content, token counts and log-probabilities, and the executed calls in `codeCalls`.
import type { TextCodec } from "../../generate/codec.js";
import type { ChatFormat } from "../../tokenizer/chat.js";
import { EOM, PYTHON_TAG } from "../../tokenizer/specialTokens.js";
import type { ToolCall } from "../../tokenizer/tools.js";
import type { ConstraintSpec, EngineClient } from "../engine/client.js";
import { type DoneEvent, type GenerationRequest, RejectedError } from "../engine/types.js";
import {
  type CodeInterpreter,
  type CodeInterpreterCall,
  newCallId,
  PythonTagCallStream,
} from "../tools/codeInterpreter.js";
import { type ChoiceHandle, type ChoiceResult, type ChoiceSink, startChoice } from "./choice.js";

export interface InterpreterSink extends ChoiceSink {
  /** A code call: before it runs (status "interpreting", no output yet) and once it has run. */
  codeCall?(call: CodeInterpreterCall | InterpretingCall, index: number): void | Promise<void>;
}

export type InterpretingCall = Pick<CodeInterpreterCall, "id" | "type" | "code"> & { status: "interpreting" };

export interface InterpreterResult extends ChoiceResult {
  codeCalls: CodeInterpreterCall[];
}

export async function startInterpreterChoice(
  engine: EngineClient,
  codec: TextCodec,
  req: GenerationRequest,
  opts: {
    stops: readonly string[];
    bosId: number | null;
    constraint: ConstraintSpec | null;
    sink: InterpreterSink;
  },
  interpreter: CodeInterpreter,
  format: ChatFormat,
): Promise<ChoiceHandle> {
  const tokenizer = format.tokenizer;
  const eom = tokenizer.special(EOM);
  let current: ChoiceHandle | null = null;
  let cancelled = false;
  let held: ToolCall[] = [];
  const sink: ChoiceSink = {
    content: (t, lps) => opts.sink.content(t, lps),
    // Calls wait for the round's end: only then is it known whether one is run here.
    toolCalls: (calls) => {
      held.push(...calls);
    },
  };
  const round = (r: GenerationRequest) =>
    startChoice(engine, codec, r, { ...opts, tools: new PythonTagCallStream(), sink });
  current = await round(req);

  const result = (async (): Promise<InterpreterResult> => {
    const rounds: ChoiceResult[] = [];
    const codeCalls: CodeInterpreterCall[] = [];
    let prompt = req.prompt;
    for (;;) {
      const r = await current!.result;
      rounds.push(r);
      const call = r.toolCalls.length === 1 ? r.toolCalls[0]! : null;
      const code = call?.toolName === "code_interpreter" ? String(call.arguments.code ?? "") : null;
      const runnable = code !== null && r.done.stopId === eom && !cancelled;
      if (!runnable || codeCalls.length >= interpreter.rounds) break;
      held = [];
      const id = newCallId();
      await opts.sink.codeCall?.(
        { id, type: "code_interpreter_call", code, status: "interpreting" },
        codeCalls.length,
      );
      const ran = await interpreter.run(code, id);
      codeCalls.push(ran);
      await opts.sink.codeCall?.(ran, codeCalls.length - 1);
      // The model's call as it wrote it (text before the tag, the tag, the code, <|eom_id|>), the result.
      prompt = [
        ...prompt,
        ...tokenizer.encode(r.text),
        tokenizer.special(PYTHON_TAG),
        ...tokenizer.encode(code),
        eom,
        ...format.encodeMessage({ role: "ipython", content: ran.outputs[0]!.logs }),
        ...format.encodeHeader("assistant"),
      ];
      const used = rounds.reduce((n, x) => n + x.done.completionTokens, 0);
      const left = Math.min(req.maxTokens - used, engine.info.contextLength - prompt.length);
      if (cancelled || left <= 0) return joined(rounds, codeCalls, cancelled ? "cancelled" : "length");
      try {
        current = await round({ ...req, prompt, maxTokens: left });
      } catch (e) {
        if (!(e instanceof RejectedError)) throw e;
        return joined(rounds, codeCalls, "error");
      }
    }
    if (held.length > 0) await opts.sink.toolCalls?.(held);
    return joined(rounds, codeCalls, null);
  })();
  return {
    result,
    cancel: () => {
      cancelled = true;
      current?.cancel();
    },
  };
}

/** The rounds as one choice: the last round's calls and finish reason unless `finish` overrides it. */
function joined(
  rounds: ChoiceResult[],
  codeCalls: CodeInterpreterCall[],
  finish: ChoiceResult["finishReason"] | null,
): InterpreterResult {
  const last = rounds.at(-1)!;
  const sum = (f: (d: DoneEvent) => number) => rounds.reduce((n, r) => n + f(r.done), 0);
  return {
    text: rounds.map((r) => r.text).join(""),
    toolCalls: finish === null ? last.toolCalls : [],
    logprobs: rounds.flatMap((r) => r.logprobs),
    finishReason: finish ?? last.finishReason,
    done: {
      ...last.done,
      promptTokens: sum((d) => d.promptTokens),
      completionTokens: sum((d) => d.completionTokens),
      cachedTokens: sum((d) => d.cachedTokens),
    },
    tFirst: rounds[0]!.tFirst,
    codeCalls,
  };
}
