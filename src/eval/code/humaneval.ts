// HumanEval (Chen et al. 2021, github.com/openai/human-eval): reading the official HumanEval.jsonl(.gz),
// what the model is given, where its completion is cut, the program that checks it (prompt + completion
// + test + `check(entry_point)`, as human-eval's execution.py builds it) and runCompletion, which runs
// that program in the sandbox (sandbox.ts) and classifies the outcome.
// Prompting follows lm-evaluation-harness's tasks: base models continue the prompt as-is and stop at
// "\nclass", "\ndef", "\n#", "\nif", "\nprint" (humaneval.yaml); instruct models get the prompt in a user
// turn and an assistant turn already begun with the prompt inside a python fence, and their answer ends
// at the closing fence (humaneval_instruct.yaml). The spec (§10.2) scores it 0-shot, pass@1, at most
// 1024 new tokens.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { runSandboxed, type SandboxLimits } from "./sandbox.js";

export interface HumanEvalProblem {
  /** "HumanEval/0" … */
  taskId: string;
  /** Imports, the signature and the docstring: the text the model continues. */
  prompt: string;
  /** The reference body (prompt + canonicalSolution passes the test). */
  canonicalSolution: string;
  /** Python defining `check(candidate)`. */
  test: string;
  /** The function's name, passed to check(). */
  entryPoint: string;
}

const FIELDS = [
  ["task_id", "taskId"],
  ["prompt", "prompt"],
  ["canonical_solution", "canonicalSolution"],
  ["test", "test"],
  ["entry_point", "entryPoint"],
] as const;

/** Reads HumanEval.jsonl or HumanEval.jsonl.gz (one JSON object a line); errors name the file and line. */
export function readHumanEval(path: string): HumanEvalProblem[] {
  let bytes = readFileSync(path);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new Error(`${path}: not a readable gzip file (${(e as Error).message})`);
    }
  }
  const problems: HumanEvalProblem[] = [];
  const seen = new Map<string, number>();
  bytes
    .toString("utf8")
    .split("\n")
    .forEach((text, i) => {
      const line = i + 1;
      if (text.trim() === "") return;
      let row: unknown;
      try {
        row = JSON.parse(text);
      } catch (e) {
        throw new Error(`${path}:${line}: not a JSON object (${(e as Error).message})`);
      }
      if (typeof row !== "object" || row === null || Array.isArray(row))
        throw new Error(`${path}:${line}: not a JSON object`);
      const r = row as Record<string, unknown>;
      const p = {} as Record<(typeof FIELDS)[number][1], string>;
      for (const [name, key] of FIELDS) {
        if (!(name in r)) throw new Error(`${path}:${line}: field '${name}' is missing`);
        if (typeof r[name] !== "string") throw new Error(`${path}:${line}: field '${name}' must be a string`);
        p[key] = r[name];
      }
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(p.entryPoint))
        throw new Error(`${path}:${line}: field 'entry_point' must be a Python name, got '${p.entryPoint}'`);
      const before = seen.get(p.taskId);
      if (before !== undefined)
        throw new Error(`${path}:${line}: task_id '${p.taskId}' repeats line ${before}`);
      seen.set(p.taskId, line);
      problems.push(p);
    });
  if (problems.length === 0) throw new Error(`${path}: no problems in it`);
  return problems;
}

/** Where base-model generations stop (lm-evaluation-harness humaneval.yaml, after the Codex paper). */
export const HUMANEVAL_STOP = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"] as const;
/** Where instruct-model generations stop (humaneval_instruct.yaml's, less tokenizer-specific ends). */
export const HUMANEVAL_INSTRUCT_STOP = ["\n```", "\nclass", "\n#", "\nif", "\nprint"] as const;
/** New tokens at most (spec §10.2). */
export const HUMANEVAL_MAX_TOKENS = 1024;

export type PromptStyle = "base" | "instruct";

export interface HumanEvalPrompt {
  /** Instruct: the user turn of the chat; base: null (no chat format). */
  user: string | null;
  /** The text the model continues: base, the whole input; instruct, the start of the assistant turn. */
  prefix: string;
  /** Stop when any of these appears in the generated text (it is cut there by humanEvalCompletion). */
  stop: readonly string[];
  maxTokens: number;
}

/** What the model is given for `problem`. */
export function humanEvalPrompt(problem: HumanEvalProblem, style: PromptStyle = "base"): HumanEvalPrompt {
  if (style === "base")
    return { user: null, prefix: problem.prompt, stop: HUMANEVAL_STOP, maxTokens: HUMANEVAL_MAX_TOKENS };
  return {
    user: `Write a solution to the following problem and make sure that it passes the tests:\n\`\`\`${problem.prompt}`,
    prefix: `Here is the completed function:\n\`\`\`python\n${problem.prompt}\n`,
    stop: HUMANEVAL_INSTRUCT_STOP,
    maxTokens: HUMANEVAL_MAX_TOKENS,
  };
}

/**
 * The completion that is checked, from the text generated after the prompt's prefix: cut at the first
 * stop sequence (a generator that stops there already gives that), and for instruct at the first fence.
 */
export function humanEvalCompletion(generated: string, style: PromptStyle = "base"): string {
  const stops: readonly string[] = style === "base" ? HUMANEVAL_STOP : [...HUMANEVAL_INSTRUCT_STOP, "```"];
  let end = generated.length;
  for (const s of stops) {
    const i = generated.indexOf(s);
    if (i >= 0 && i < end) end = i;
  }
  return generated.slice(0, end);
}

/** The program that checks a completion (human-eval's check_program). */
export function humanEvalProgram(problem: HumanEvalProblem, completion: string): string {
  return `${problem.prompt}${completion}\n${problem.test}\ncheck(${problem.entryPoint})\n`;
}

export type CompletionStatus = "passed" | "failed" | "error" | "timeout" | "memory";

export interface CompletionResult {
  passed: boolean;
  /** failed: an assertion of the test failed; error: any other exception or exit; memory: MemoryError. */
  status: CompletionStatus;
  /** One line: the exception, or which limit was reached. */
  detail: string;
  wallS: number;
}

const lastLine = (s: string) =>
  s
    .trim()
    .split("\n")
    .filter((l) => l.trim() !== "")
    .pop()
    ?.slice(0, 300) ?? "";

/**
 * Runs prompt + completion + test + check(entry_point) in the sandbox. Passed means check() returned:
 * the program ends by writing a random token to the sandbox's fd 3 after it, so an early exit(0) is no
 * pass. (Code that set out to forge it could read the token from its own source: the sandbox protects
 * the machine, it does not make the score proof against an adversary.)
 */
export async function runCompletion(
  problem: HumanEvalProblem,
  completion: string,
  limits: Partial<SandboxLimits> = {},
): Promise<CompletionResult> {
  const token = randomBytes(12).toString("hex");
  const program = `${humanEvalProgram(problem, completion)}\nimport os as _herd_os\n_herd_os.write(3, b"${token}\\n")\n`;
  const r = await runSandboxed(program, limits);
  const err = r.stderr;
  const res = (status: CompletionStatus, detail: string): CompletionResult => ({
    passed: status === "passed",
    status,
    detail,
    wallS: r.wallS,
  });
  if (r.timedOut) return res("timeout", `wall-clock limit reached (${r.wallS.toFixed(1)} s)`);
  if (r.exitCode === 0 && r.channel === `${token}\n`) return res("passed", "");
  if (r.exitCode === 128 + 24 || (r.exitCode === 128 + 9 && !/MemoryError/.test(err)))
    return res("timeout", "CPU time limit reached");
  if (/MemoryError|Cannot allocate memory|out of memory/.test(err)) return res("memory", lastLine(err));
  const last = lastLine(err);
  if (/^AssertionError\b/.test(last)) return res("failed", last);
  if (r.exitCode === 0) return res("error", "exited before check() returned");
  return res("error", last || `exit code ${r.exitCode}`);
}
