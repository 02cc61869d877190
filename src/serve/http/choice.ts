// One choice of a completion, from engine tokens to released text: ids are decoded as they come (UTF-8
// completed across tokens), stop strings held back and cut (the engine request is cancelled at a hit),
// and, with tools, the text goes through a ToolCallStream so a call's text is never released as content.
// The sink hears content and tool calls in order (a sink may be async, e.g. a guard deciding at sentence
// boundaries; its calls are chained). Resolves when the engine has finished the request and the sink has
// heard everything.
import type { TextCodec } from "../../generate/codec.js";
import { StopMatcher } from "../../generate/generate.js";
import type { ToolCall } from "../../tokenizer/tools.js";
import type { ToolCallStream } from "../contracts.js";
import type { ConstraintSpec, EngineClient } from "../engine/client.js";
import type { DoneEvent, GenerationRequest, TokenLogprob } from "../engine/types.js";

export interface ChoiceSink {
  content(text: string, logprobs: TokenLogprob[]): void | Promise<void>;
  toolCalls?(calls: ToolCall[]): void | Promise<void>;
}

export interface ChoiceResult {
  text: string;
  toolCalls: ToolCall[];
  logprobs: TokenLogprob[];
  /** OpenAI's finish reason. */
  finishReason: "stop" | "length" | "tool_calls" | "cancelled" | "error";
  done: DoneEvent;
  tFirst: number;
}

export interface ChoiceHandle {
  result: Promise<ChoiceResult>;
  cancel(): void;
}

/** Submit one choice; rejects (RejectedError) if the engine does not take it. */
export async function startChoice(
  engine: EngineClient,
  codec: TextCodec,
  req: GenerationRequest,
  opts: {
    stops: readonly string[];
    bosId: number | null;
    constraint: ConstraintSpec | null;
    tools: ToolCallStream | null;
    sink: ChoiceSink;
  },
): Promise<ChoiceHandle> {
  const decoder = codec.stream(req.prompt.length > 0 && req.prompt[req.prompt.length - 1] === opts.bosId);
  const matcher = new StopMatcher(opts.stops);
  let chain: Promise<void> = Promise.resolve();
  let text = "";
  const calls: ToolCall[] = [];
  const logprobs: TokenLogprob[] = [];
  let stopped = false;
  let tFirst = 0;
  let cancel: () => void = () => {};
  const release = (t: string, lps: TokenLogprob[], end = false) => {
    let content = t;
    let got: ToolCall[] = [];
    if (opts.tools) {
      const d = opts.tools.push(t);
      content = d.content;
      got = d.calls;
      if (end) {
        const e = opts.tools.end();
        content += e.content;
        got = [...got, ...e.calls];
      }
    }
    text += content;
    calls.push(...got);
    if (content !== "" || lps.length > 0) chain = chain.then(() => opts.sink.content(content, lps));
    if (got.length > 0 && opts.sink.toolCalls) chain = chain.then(() => opts.sink.toolCalls!(got));
  };
  let resolveDone!: (d: DoneEvent) => void;
  const done = new Promise<DoneEvent>((r) => {
    resolveDone = r;
  });
  cancel = await engine.submit(
    req,
    {
      onTokens: (tokens) => {
        if (stopped) return;
        if (tFirst === 0) tFirst = performance.now();
        for (const t of tokens) {
          if (t.logprob) logprobs.push(t.logprob);
          const [text, stop] = matcher.push(decoder.push(t.id));
          release(text, t.logprob ? [t.logprob] : []);
          if (stop) {
            stopped = true;
            cancel();
            break;
          }
        }
      },
      onDone: resolveDone,
    },
    opts.constraint,
  );
  const result = (async (): Promise<ChoiceResult> => {
    const d = await done;
    if (!stopped) {
      const [text, stop] = matcher.push(decoder.flush());
      stopped = stop;
      release(stop ? text : text + matcher.flush(), [], true);
    } else release("", [], true);
    await chain;
    let finishReason: ChoiceResult["finishReason"] =
      stopped || d.finishReason === "stop" ? "stop" : d.finishReason === "length" ? "length" : d.finishReason;
    if (calls.length > 0 && finishReason === "stop") finishReason = "tool_calls";
    return { text, toolCalls: calls, logprobs, finishReason, done: d, tFirst };
  })();
  return { result, cancel: () => cancel() };
}
