// pass@k for code generation (Chen et al. 2021 §2.1): with n samples of a problem of which c pass, the
// unbiased estimate of "at least one of k samples passes" is 1 − C(n−c, k) / C(n, k), computed as the
// product 1 − Π_{i=n−c+1..n} (1 − k/i) (human-eval's estimate_pass_at_k), which never forms a binomial
// coefficient. scoreHumanEval runs every sample of every problem in the sandbox, a few at a time, and
// averages pass@k over the problems for each k that every problem has enough samples for (as human-eval).
import { type CompletionResult, type HumanEvalProblem, runCompletion } from "./humaneval.js";
import type { SandboxLimits } from "./sandbox.js";

/** Unbiased pass@k from n samples of which c passed (0 ≤ c ≤ n, 1 ≤ k ≤ n). */
export function passAtK(n: number, c: number, k: number): number {
  if (!(Number.isInteger(n) && Number.isInteger(c) && Number.isInteger(k)))
    throw new Error(`passAtK: n, c and k must be integers, got ${n}, ${c}, ${k}`);
  if (!(n >= 1 && c >= 0 && c <= n && k >= 1 && k <= n))
    throw new Error(`passAtK: need 0 ≤ c ≤ n and 1 ≤ k ≤ n, got n=${n} c=${c} k=${k}`);
  if (n - c < k) return 1;
  let fail = 1;
  for (let i = n - c + 1; i <= n; i++) fail *= 1 - k / i;
  return 1 - fail;
}

export interface ProblemScore {
  taskId: string;
  /** Samples run, and how many passed. */
  n: number;
  c: number;
  /** pass@k of this problem, for each k ≤ n asked for ("pass@1": …). */
  passAtK: Record<string, number>;
  samples: CompletionResult[];
}

export interface HumanEvalScore {
  problems: ProblemScore[];
  /** Mean over problems of pass@k, for each k asked for that every problem has ≥ k samples for. */
  passAtK: Record<string, number>;
  /** Samples by status ("passed": 12, "timeout": 1 …). */
  statuses: Record<string, number>;
}

export interface ScoreOptions {
  /** The k of pass@k (default [1, 10]). */
  k?: number[];
  limits?: Partial<SandboxLimits>;
  /** Sandboxes running at once (default 2). */
  concurrency?: number;
  /** After each sample: samples done, samples in all, samples passed so far. */
  onProgress?: (done: number, total: number, passed: number) => void;
}

/** Runs completions[i][j] (sample j of problems[i]) and scores them. */
export async function scoreHumanEval(
  problems: readonly HumanEvalProblem[],
  completions: readonly (readonly string[])[],
  opts: ScoreOptions = {},
): Promise<HumanEvalScore> {
  if (completions.length !== problems.length)
    throw new Error(`scoreHumanEval: ${completions.length} completion lists for ${problems.length} problems`);
  const ks = opts.k ?? [1, 10];
  const concurrency = opts.concurrency ?? 2;
  if (!(Number.isInteger(concurrency) && concurrency >= 1))
    throw new Error(`scoreHumanEval: concurrency must be an integer ≥ 1, got ${concurrency}`);
  const jobs = completions.flatMap((list, i) => {
    if (list.length === 0) throw new Error(`scoreHumanEval: no completions for ${problems[i]!.taskId}`);
    return list.map((_, j) => [i, j] as const);
  });
  const results: CompletionResult[][] = completions.map(() => []);
  let next = 0;
  let done = 0;
  let passed = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const [i, j] = jobs[next++]!;
      let r: CompletionResult;
      try {
        r = await runCompletion(problems[i]!, completions[i]![j]!, opts.limits);
      } catch (e) {
        next = jobs.length; // a sandbox that cannot run stops the whole scoring: no sample is guessed
        throw e;
      }
      results[i]![j] = r;
      done++;
      if (r.passed) passed++;
      opts.onProgress?.(done, jobs.length, passed);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));

  const scored = problems.map((p, i) => problemScore(p, results[i]!, ks));
  const mean: Record<string, number> = {};
  for (const k of ks) {
    const key = `pass@${k}`;
    if (scored.every((s) => key in s.passAtK))
      mean[key] = scored.reduce((a, s) => a + s.passAtK[key]!, 0) / scored.length;
  }
  const statuses: Record<string, number> = {};
  for (const s of scored) for (const r of s.samples) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  return { problems: scored, passAtK: mean, statuses };
}

function problemScore(p: HumanEvalProblem, samples: CompletionResult[], ks: readonly number[]): ProblemScore {
  const c = samples.filter((s) => s.passed).length;
  const at: Record<string, number> = {};
  for (const k of ks) if (k <= samples.length) at[`pass@${k}`] = passAtK(samples.length, c, k);
  return { taskId: p.taskId, n: samples.length, c, passAtK: at, samples };
}

/**
 * One problem's completions run and scored (a harness that scores item by item): pass@k for each k ≤ n.
 * Its samples run `concurrency` at a time; onProgress counts this problem's samples.
 */
export async function scoreProblem(
  problem: HumanEvalProblem,
  completions: readonly string[],
  opts: ScoreOptions = {},
): Promise<ProblemScore> {
  return (await scoreHumanEval([problem], [completions], opts)).problems[0]!;
}
