// Multi-step arithmetic word problems in GSM8K's answer format: reasoning lines, one per step with its
// equation, then `#### N`. Kept small enough for a small model to learn: a start count of 2–20 things,
// two or three steps by default (ArithmeticOptions; add 1–10, give away some, buy packs of 2–5 × 2–5), every intermediate count
// between 0 and 100, and a fixed phrasing per step. (GSM8K's `<<3+4=7>>` calculator marks are left out.)
// The wrong answer keeps the reasoning but slips in the last equation (off by 1–3).
import type { Rng } from "../../core/rng.js";
import type { Item } from "./checker.js";

const NAMES = ["Tom", "Ann", "Sam", "Mia", "Ben", "Lily", "Max", "Zoe", "Leo", "Eva", "Noah", "Ruby"];
const THINGS = [
  "apples",
  "pencils",
  "marbles",
  "stickers",
  "books",
  "cookies",
  "coins",
  "shells",
  "cards",
  "eggs",
];

export const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng.next() * xs.length)]!;
export const int = (rng: Rng, lo: number, hi: number) => lo + Math.floor(rng.next() * (hi - lo + 1));

interface Step {
  /** The question's sentence. */
  text: string;
  /** The reasoning line before the equation. */
  reason: string;
  /** The equation's left side (from the current count). */
  expr: string;
  value: number;
}

export interface ArithmeticOptions {
  minSteps?: number;
  maxSteps?: number;
  /** Largest start count (default 20; the least is 2). */
  maxStart?: number;
  /** Largest count found or given away in one step (default 10). */
  maxAdd?: number;
  /** Largest number of packs and of things per pack (default 5; the least is 2). */
  maxPack?: number;
}

/** One step from count `n`: add, give away or buy packs, whichever keeps the count in 0..100. */
/** "1 apple", "3 apples" (every name in THINGS is a plural in -s). */
const noun = (a: number, things: string) => (a === 1 ? things.slice(0, -1) : things);

function step(rng: Rng, o: ArithmeticOptions, who: string, things: string, friend: string, n: number): Step {
  for (;;) {
    const op = int(rng, 0, 2);
    if (op === 0) {
      const a = int(rng, 1, o.maxAdd ?? 10);
      if (n + a > 100) continue;
      return {
        text: `${who} finds ${a} more ${noun(a, things)}.`,
        reason: "After finding more",
        expr: `${n} + ${a}`,
        value: n + a,
      };
    }
    if (op === 1) {
      if (n < 2) continue;
      const a = int(rng, 1, Math.min(o.maxAdd ?? 10, n - 1));
      return {
        text: `${who} gives ${a} ${noun(a, things)} to ${friend}.`,
        reason: "After giving some away",
        expr: `${n} - ${a}`,
        value: n - a,
      };
    }
    const packs = int(rng, 2, o.maxPack ?? 5);
    const each = int(rng, 2, o.maxPack ?? 5);
    if (n + packs * each > 100) continue;
    return {
      text: `${who} buys ${packs} packs with ${each} ${things} in each pack.`,
      reason: `The packs hold ${packs} * ${each} = ${packs * each} ${things}. After buying them`,
      expr: `${n} + ${packs * each}`,
      value: n + packs * each,
    };
  }
}

/** The difficulty: how many steps a problem has, drawn uniformly from min..max (default 2..3). */

/** A fresh problem (its id is set by the caller). */
export function arithmeticItem(rng: Rng, opts: ArithmeticOptions = {}): Item {
  const who = pick(rng, NAMES);
  let friend = pick(rng, NAMES);
  while (friend === who) friend = pick(rng, NAMES);
  const thing = pick(rng, THINGS);
  let n = int(rng, 2, opts.maxStart ?? 20);
  const steps: Step[] = [];
  const count = int(rng, opts.minSteps ?? 2, opts.maxSteps ?? 3);
  const question = [`${who} has ${n} ${thing}.`];
  const lines = [`${who} starts with ${n} ${thing}.`];
  for (let i = 0; i < count; i++) {
    const s = step(rng, opts, who, thing, friend, n);
    steps.push(s);
    question.push(i === 0 ? s.text : `Then ${s.text}`);
    n = s.value;
  }
  question.push(`How many ${thing} does ${who} have now?`);
  const last = steps.at(-1)!;
  let slip = n + (rng.next() < 0.5 ? -1 : 1) * int(rng, 1, 3);
  if (slip < 0) slip = n + 1;
  const body = steps
    .slice(0, -1)
    .map((s) => `${s.reason}, ${who} has ${s.expr} = ${s.value} ${noun(s.value, thing)}.`);
  const answer = (v: number) =>
    [
      ...lines,
      ...body,
      `${last.reason}, ${who} has ${last.expr} = ${v} ${noun(v, thing)}.`,
      `#### ${v}`,
    ].join("\n");
  return {
    task: {
      id: "",
      kind: "arithmetic",
      messages: [{ role: "user", content: question.join(" ") }],
      check: { kind: "arithmetic", answer: n },
    },
    correct: answer(n),
    wrong: answer(slip),
  };
}
