// Llama 3.1's built-in code interpreter for `herd serve --code-interpreter` (spec §4.2): the system message
// gets Meta's "Environment: ipython" line, and a reply that is `<|python_tag|>{code}<|eom_id|>` is run
// here, in the evaluation harness's sandbox (src/eval/code/sandbox.ts: bubblewrap, seccomp, rlimits; never
// without it). What goes back to the model as the `ipython` message is what llama-stack's code interpreter
// writes: the process status ("completed", "timeout", "error"), then `[stdout]…[/stdout]` and
// `[stderr]…[/stderr]` when not empty, each cut to `outputChars` with a marker. The client hears each run as
// an OpenAI Responses `code_interpreter_call` item (id, code, status, outputs: [{type: "logs"}]) with
// herd's stdout, stderr, exit_code, timed_out and duration_ms beside it. At most `concurrency` runs at once
// (the rest wait), so a burst of requests cannot fork a sandbox each. Counters for /metrics.
import { randomBytes } from "node:crypto";
import {
  runSandboxed,
  type SandboxLimits,
  type SandboxResult,
  SandboxUnavailableError,
  sandboxCheck,
  sandboxLimits,
} from "../../eval/code/sandbox.js";
import type { Message } from "../../tokenizer/chat.js";
import { PYTHON_TAG } from "../../tokenizer/specialTokens.js";
import type { ToolCallStream, ToolStreamDelta } from "../contracts.js";
import { LlamaToolCallStream } from "./stream.js";

export interface CodeInterpreterOptions {
  /** Code runs per reply at most; a further code call is returned to the client as a tool call. */
  rounds?: number;
  /** Sandbox limits (default: the sandbox's own, 5 s wall and CPU, 1 GiB address space, 16 processes). */
  limits?: Partial<SandboxLimits>;
  /** Characters of stdout and of stderr fed back to the model and reported (the rest cut with a marker). */
  outputChars?: number;
  /** Sandboxed runs at once; more wait their turn. */
  concurrency?: number;
  /** The Python the sandbox runs (default python3 on PATH). */
  python?: string;
}

export const CODE_INTERPRETER_DEFAULTS = { rounds: 4, outputChars: 4096, concurrency: 4 } as const;

/** One executed call as the client hears it (OpenAI's code_interpreter_call item, plus herd's fields). */
export interface CodeInterpreterCall {
  id: string;
  type: "code_interpreter_call";
  code: string;
  /** "completed": exit status 0; "failed": anything else (an error, a limit, a sandbox that failed). */
  status: "completed" | "failed";
  /** What the model was given as the ipython message. */
  outputs: { type: "logs"; logs: string }[];
  stdout: string;
  stderr: string;
  exit_code: number | null;
  timed_out: boolean;
  duration_ms: number;
}

export interface CodeInterpreterStats {
  calls: number;
  failures: number;
  seconds: number;
}

type Runner = (code: string, limits: Partial<SandboxLimits>, python: string) => Promise<SandboxResult>;

export class CodeInterpreter {
  readonly rounds: number;
  readonly stats: CodeInterpreterStats = { calls: 0, failures: 0, seconds: 0 };
  private readonly outputChars: number;
  private readonly concurrency: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  private constructor(
    private readonly opts: CodeInterpreterOptions,
    private readonly runner: Runner,
  ) {
    this.rounds = positive(opts.rounds ?? CODE_INTERPRETER_DEFAULTS.rounds, "rounds", 0);
    this.outputChars = positive(opts.outputChars ?? CODE_INTERPRETER_DEFAULTS.outputChars, "outputChars", 1);
    this.concurrency = positive(opts.concurrency ?? CODE_INTERPRETER_DEFAULTS.concurrency, "concurrency", 1);
    sandboxLimits(opts.limits ?? {}, "code interpreter limits"); // bad limits fail here, not on each run
  }

  /** The interpreter, once the sandbox is seen to work here; else SandboxUnavailableError saying why. */
  static async create(
    opts: CodeInterpreterOptions = {},
    runner: Runner = runSandboxed,
  ): Promise<CodeInterpreter> {
    const why = await sandboxCheck(opts.python);
    if (why !== null) throw new SandboxUnavailableError(`--code-interpreter: ${why}`);
    return new CodeInterpreter(opts, runner);
  }

  /** Runs one call's code in the sandbox; never throws (a sandbox that fails is a failed call). */
  async run(code: string, id = newCallId()): Promise<CodeInterpreterCall> {
    await this.turn();
    const t0 = performance.now();
    let r: SandboxResult | Error;
    try {
      r = await this.runner(code, this.opts.limits ?? {}, this.opts.python ?? "python3");
    } catch (e) {
      r = e as Error;
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
    const seconds = (performance.now() - t0) / 1000;
    const call = this.report(id, code, r, seconds);
    this.stats.calls++;
    this.stats.seconds += seconds;
    if (call.status === "failed") this.stats.failures++;
    return call;
  }

  /** Prometheus lines for /metrics. */
  metricLines(): string[] {
    const s = this.stats;
    return [
      ...metric("herd_code_interpreter_calls_total", "Code interpreter calls run in the sandbox.", s.calls),
      ...metric(
        "herd_code_interpreter_failures_total",
        "Code interpreter calls that failed (non-zero exit, a limit, a sandbox error).",
        s.failures,
      ),
      ...metric("herd_code_interpreter_seconds_total", "Wall-clock seconds spent in the sandbox.", s.seconds),
    ];
  }

  private async turn(): Promise<void> {
    while (this.running >= this.concurrency) await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
  }

  private report(id: string, code: string, r: SandboxResult | Error, seconds: number): CodeInterpreterCall {
    const base = {
      id,
      type: "code_interpreter_call" as const,
      code,
      duration_ms: Math.round(seconds * 1000),
    };
    if (r instanceof Error) {
      const stderr = this.cut(r.message);
      const logs = ipythonText("error", "", stderr);
      return {
        ...base,
        status: "failed",
        outputs: [{ type: "logs", logs }],
        stdout: "",
        stderr,
        exit_code: null,
        timed_out: false,
      };
    }
    const stdout = this.cut(r.stdout);
    const stderr = this.cut(r.stderr);
    const logs = ipythonText(r.timedOut ? "timeout" : "completed", stdout, stderr);
    return {
      ...base,
      status: r.exitCode === 0 && !r.timedOut ? "completed" : "failed",
      outputs: [{ type: "logs", logs }],
      stdout,
      stderr,
      exit_code: r.exitCode,
      timed_out: r.timedOut,
    };
  }

  private cut(s: string): string {
    if (s.length <= this.outputChars) return s;
    return `${s.slice(0, this.outputChars)}\n[output truncated: ${s.length - this.outputChars} more characters]`;
  }
}

/** llama-stack's ipython message: the status line, then each non-empty stream between its tags. */
export function ipythonText(
  status: "completed" | "timeout" | "error",
  stdout: string,
  stderr: string,
): string {
  const pieces: string[] = [status];
  for (const [name, text] of [
    ["stdout", stdout.trim()],
    ["stderr", stderr.trim()],
  ] as const)
    if (text !== "") pieces.push(`[${name}]`, text, `[/${name}]`);
  return pieces.join("\n");
}

/**
 * The dialog with the code interpreter switched on: "Environment: ipython" heads the system message (alone,
 * as in Meta's Llama 3.1 code-interpreter example, or a blank line before the caller's system text).
 */
export function withCodeInterpreter(messages: readonly Message[]): Message[] {
  const first = messages[0];
  if (first?.role === "system")
    return [{ ...first, content: `${ENVIRONMENT}\n\n${first.content}` }, ...messages.slice(1)];
  return [{ role: "system", content: ENVIRONMENT }, ...messages];
}

const ENVIRONMENT = "Environment: ipython";

/**
 * The reply parser of a request without tools of its own: only `<|python_tag|>` begins a call (code, a
 * built-in, or JSON, read by LlamaToolCallStream from the tag on); other text is content, even text that
 * looks like a custom call (no custom tool was offered). Text is held only while it could be the tag.
 */
export class PythonTagCallStream implements ToolCallStream {
  private held = "";
  private inner: LlamaToolCallStream | null = null;

  push(text: string): ToolStreamDelta {
    if (this.inner) return this.inner.push(text);
    const s = this.held + text;
    const at = s.indexOf(PYTHON_TAG);
    if (at >= 0) {
      this.held = "";
      this.inner = new LlamaToolCallStream();
      return { content: s.slice(0, at), calls: this.inner.push(s.slice(at)).calls };
    }
    let keep = Math.min(s.length, PYTHON_TAG.length - 1);
    while (keep > 0 && !PYTHON_TAG.startsWith(s.slice(s.length - keep))) keep--;
    this.held = s.slice(s.length - keep);
    return { content: s.slice(0, s.length - keep), calls: [] };
  }

  end(): ToolStreamDelta {
    if (this.inner) return this.inner.end();
    const content = this.held;
    this.held = "";
    return { content, calls: [] };
  }
}

/** A fresh call id ("ci_" and 24 hex digits). */
export const newCallId = () => `ci_${randomBytes(12).toString("hex")}`;

function metric(name: string, help: string, value: number): string[] {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${value}`];
}

function positive(v: number, name: string, min: number): number {
  if (!Number.isInteger(v) || v < min)
    throw new Error(`code interpreter: ${name} must be an integer ≥ ${min} (got ${v})`);
  return v;
}
