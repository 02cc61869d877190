// Verifiable tasks for the small post-training recipe, and their checker: `check(task, responseText)`
// says whether a response is correct and why. Three kinds, each with its own check:
// - arithmetic: GSM8K's answer format; the number after the last `#### ` must equal the answer (as
//   lm-evaluation-harness's gsm8k "strict-match" reads it: `#### (-?[0-9.,]+)`, commas removed).
// - instructions: IFEval-like constraints, every one must hold; each is named by its IFEval instruction
//   id and checked by IFEval's rule (words are `\w+` runs; bullets are lines starting `* ` or `- `; JSON
//   may sit in a ``` fence), except keywords, which must appear as whole words (IFEval matches substrings).
// - facts: the first word of the response must be the answer (case and surrounding punctuation ignored).

export type TaskKind = "arithmetic" | "instructions" | "facts";
export const TASK_KINDS: readonly TaskKind[] = ["arithmetic", "instructions", "facts"];

export type Constraint =
  | { id: "length_constraints:number_words"; relation: "at least" | "less than"; words: number }
  | { id: "keywords:existence"; keywords: string[] }
  | { id: "detectable_format:json_format" }
  | { id: "change_case:english_lowercase" }
  | { id: "change_case:english_capital" }
  | { id: "detectable_format:number_bullet_lists"; bullets: number };

export type CheckSpec =
  | { kind: "arithmetic"; answer: number }
  | { kind: "instructions"; constraints: Constraint[] }
  | { kind: "facts"; answer: string };

/** A prompt and what its checker needs (a line of prompts.jsonl). */
export interface Task {
  id: string;
  kind: TaskKind;
  /** The prompt: chat messages without the answer (one user message here). */
  messages: { role: "system" | "user"; content: string }[];
  check: CheckSpec;
}

/** A task with a correct and an incorrect response (what the generator makes). */
export interface Item {
  task: Task;
  /** A correct response (what SFT learns, the preference pair's chosen). */
  correct: string;
  /** An incorrect one (the pair's rejected). */
  wrong: string;
}

export interface CheckResult {
  correct: boolean;
  /** What was checked and what was found. */
  detail: string;
}

const CONSTRAINT_FIELDS: Record<Constraint["id"], Record<string, "number" | "strings" | "relation">> = {
  "length_constraints:number_words": { relation: "relation", words: "number" },
  "keywords:existence": { keywords: "strings" },
  "detectable_format:json_format": {},
  "change_case:english_lowercase": {},
  "change_case:english_capital": {},
  "detectable_format:number_bullet_lists": { bullets: "number" },
};

/** What is wrong with a check spec read from a file, as "field: problem", or null when it is sound. */
export function checkSpecProblem(spec: unknown): string | null {
  const c = spec as Record<string, unknown>;
  if (!c || typeof c !== "object" || Array.isArray(c)) return "check: must be an object";
  if (c.kind === "arithmetic") return Number.isFinite(c.answer) ? null : "check.answer: must be a number";
  if (c.kind === "facts")
    return typeof c.answer === "string" && c.answer !== ""
      ? null
      : "check.answer: must be a non-empty string";
  if (c.kind !== "instructions") return `check.kind: must be one of ${TASK_KINDS.join(", ")}`;
  if (!Array.isArray(c.constraints) || c.constraints.length === 0)
    return "check.constraints: must be a non-empty list";
  for (const [i, k] of (c.constraints as Record<string, unknown>[]).entries()) {
    const fields = CONSTRAINT_FIELDS[k?.id as Constraint["id"]];
    if (!fields)
      return `check.constraints[${i}].id: must be one of ${Object.keys(CONSTRAINT_FIELDS).join(", ")}`;
    for (const [f, type] of Object.entries(fields)) {
      const v = k[f];
      const ok =
        type === "number"
          ? Number.isInteger(v) && (v as number) >= 0
          : type === "relation"
            ? v === "at least" || v === "less than"
            : Array.isArray(v) && v.length > 0 && v.every((w) => typeof w === "string" && w !== "");
      if (!ok)
        return `check.constraints[${i}].${f}: must be ${type === "number" ? "an integer ≥ 0" : type === "relation" ? "'at least' or 'less than'" : "a non-empty list of words"}`;
    }
  }
  return null;
}

/** Is `response` a correct answer to `task`? */
export function check(task: Pick<Task, "check">, response: string): CheckResult {
  const c = task.check;
  switch (c.kind) {
    case "arithmetic":
      return checkArithmetic(c.answer, response);
    case "instructions":
      return checkConstraints(c.constraints, response);
    case "facts":
      return checkFact(c.answer, response);
  }
}

/** The number after the last `#### ` in a GSM8K-format answer, or null. */
export function finalAnswer(response: string): number | null {
  const all = [...response.matchAll(/#### (-?[0-9.,]+)/g)];
  const last = all.at(-1)?.[1];
  if (last === undefined) return null;
  const n = Number(last.replace(/,/g, "").replace(/\.$/, ""));
  return Number.isFinite(n) ? n : null;
}

function checkArithmetic(answer: number, response: string): CheckResult {
  const got = finalAnswer(response);
  if (got === null) return { correct: false, detail: "no '#### N' answer line" };
  return { correct: got === answer, detail: `answered ${got}, expected ${answer}` };
}

function checkFact(answer: string, response: string): CheckResult {
  const first = /[A-Za-z']+/.exec(response)?.[0] ?? "";
  const got = first.replace(/^'+|'+$/g, "");
  if (!got) return { correct: false, detail: "no word in the response" };
  return {
    correct: got.toLowerCase() === answer.toLowerCase(),
    detail: `answered '${got}', expected '${answer}'`,
  };
}

/** Words as IFEval counts them (nltk's RegexpTokenizer(r"\w+")). */
export function countWords(text: string): number {
  return text.match(/\w+/g)?.length ?? 0;
}

/** Bullet lines as IFEval counts them: `* item` (not `**`) or `- item`. */
export function countBullets(text: string): number {
  return (text.match(/^\s*\*[^*].*$/gm)?.length ?? 0) + (text.match(/^\s*-.*$/gm)?.length ?? 0);
}

/** IFEval's JSON check: the whole response (inside an optional ``` fence) parses as JSON. */
export function isJson(text: string): boolean {
  const body = text
    .trim()
    .replace(/^```(json|Json|JSON)?/, "")
    .replace(/```$/, "")
    .trim();
  try {
    JSON.parse(body);
    return true;
  } catch {
    return false;
  }
}

const hasWord = (text: string, word: string) =>
  new RegExp(`(^|[^\\w])${word.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}($|[^\\w])`, "i").test(text);

/** One constraint: [holds, what was found]. */
function constraintHolds(c: Constraint, text: string): [boolean, string] {
  switch (c.id) {
    case "length_constraints:number_words": {
      const n = countWords(text);
      return [
        c.relation === "at least" ? n >= c.words : n < c.words,
        `${n} words (${c.relation} ${c.words})`,
      ];
    }
    case "keywords:existence": {
      const missing = c.keywords.filter((k) => !hasWord(text, k));
      return [missing.length === 0, missing.length ? `missing ${missing.join(", ")}` : "keywords present"];
    }
    case "detectable_format:json_format":
      return isJson(text) ? [true, "JSON"] : [false, "not JSON"];
    case "change_case:english_lowercase": {
      const ok = /[a-z]/.test(text) && text === text.toLowerCase();
      return [ok, ok ? "all lowercase" : "not all lowercase"];
    }
    case "change_case:english_capital": {
      const ok = /[A-Z]/.test(text) && text === text.toUpperCase();
      return [ok, ok ? "all capitals" : "not all capitals"];
    }
    case "detectable_format:number_bullet_lists": {
      const n = countBullets(text);
      return [n === c.bullets, `${n} bullets (exactly ${c.bullets})`];
    }
  }
}

function checkConstraints(constraints: readonly Constraint[], text: string): CheckResult {
  const failed: string[] = [];
  for (const c of constraints) {
    const [ok, found] = constraintHolds(c, text);
    if (!ok) failed.push(`${c.id}: ${found}`);
  }
  return {
    correct: failed.length === 0,
    detail: failed.length ? `failed ${failed.join("; ")}` : `${constraints.length} constraint(s) hold`,
  };
}
