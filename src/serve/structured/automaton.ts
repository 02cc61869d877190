// The byte-level pushdown automaton of a JSON value matching a compiled schema (schema.ts). A state is an
// immutable stack of frames, so the vocabulary trie (trie.ts) can branch from one state into every child
// without copying; `step(state, byte)` gives the next state or null when the byte cannot continue a valid
// prefix. Every state it returns can still be completed (no dead ends), and `closer` names one byte that
// moves towards completion, so a caller can always finish a value. Strings are checked as UTF-8 byte by
// byte (so a token ending inside a character is allowed when the character can still be completed).
// Whitespace between tokens is bounded as llama.cpp's JSON grammar bounds it: nothing, one space, or a
// newline and at most 20 spaces/tabs. Numbers are bounded to 15 integer and 15 fraction digits and 2
// exponent digits (a longer one parses to a rounded or infinite double that a validator may refuse).
import type { Node, ObjectNode } from "./schema.js";
import { ANY_ARRAY, ANY_OBJECT } from "./schema.js";

const MAX_INDENT = 20;
const MAX_DIGITS = 15;
const MAX_EXP_DIGITS = 2;

type ObjPhase = "open" | "comma" | "colon" | "value" | "after";
type ArrPhase = "open" | "comma" | "after";
type NumPhase = "sign" | "zero" | "int" | "dot" | "frac" | "exp" | "expsign" | "expd";

export type Frame =
  | { t: "done" }
  | { t: "obj"; node: ObjectNode; ph: ObjPhase; seen: readonly number[]; cur: number; gap: number }
  | { t: "key"; node: ObjectNode; cands: readonly number[]; pos: number; free: number }
  | { t: "arr"; node: Extract<Node, { kind: "array" }>; ph: ArrPhase; n: number; gap: number }
  | { t: "str"; s: number }
  | { t: "num"; integer: boolean; ph: NumPhase; n: number }
  | { t: "lit"; options: readonly Uint8Array[]; pos: number; next: readonly Node[] | null }
  | { t: "pend"; node: Node }
  | { t: "seq"; parts: readonly Node[]; i: number };

export interface State {
  readonly f: Frame;
  readonly up: State | null;
}

/** The state after a complete top-level value: nothing more may follow. */
export const DONE: State = { f: { t: "done" }, up: null };

/** The start state for a value of `node`. */
export function initial(node: Node): State {
  return { f: { t: "pend", node }, up: DONE };
}

// ---- string content: a small integer state ----
// 0 plain · 1 after a backslash · 10+k inside \uXXXX with k hex digits to go ·
// 100 + 10·k + r inside a UTF-8 character with k continuation bytes to go, the next in RANGES[r].
const RANGES: readonly [number, number][] = [
  [0x80, 0xbf],
  [0xa0, 0xbf],
  [0x80, 0x9f],
  [0x90, 0xbf],
  [0x80, 0x8f],
];
const isHex = (b: number) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);

/** Next string-content state after byte b (not the closing quote), or -1; `\u` only where allowU. */
export function strStep(s: number, b: number, allowU: boolean): number {
  if (s === 0) {
    if (b < 0x20 || b === 0x22) return -1;
    if (b === 0x5c) return 1;
    if (b < 0x80) return 0;
    if (b >= 0xc2 && b <= 0xdf) return 110;
    if (b === 0xe0) return 121;
    if (b === 0xed) return 122;
    if (b >= 0xe1 && b <= 0xef) return 120;
    if (b === 0xf0) return 133;
    if (b >= 0xf1 && b <= 0xf3) return 130;
    if (b === 0xf4) return 134;
    return -1;
  }
  if (s === 1) {
    if (b === 0x75) return allowU ? 14 : -1;
    return '"\\/bfnrt'.includes(String.fromCharCode(b)) ? 0 : -1;
  }
  if (s < 100) return isHex(b) ? (s === 11 ? 0 : s - 1) : -1;
  const k = Math.floor((s - 100) / 10);
  const [lo, hi] = RANGES[s % 10]!;
  if (b < lo || b > hi) return -1;
  return k === 1 ? 0 : 100 + (k - 1) * 10;
}

const WS = (b: number) => b === 0x20 || b === 0x0a || b === 0x09;
/** Gap counter after whitespace byte b, or -1 (0 none · 1 one space · 2+k newline and k indents). */
function gapStep(gap: number, b: number): number {
  if (gap === 0) return b === 0x20 ? 1 : b === 0x0a ? 2 : -1;
  if (gap === 1) return -1;
  return b !== 0x0a && gap - 2 < MAX_INDENT ? gap + 1 : -1;
}

const f = (frame: Frame, up: State | null): State => ({ f: frame, up });

/** Consumes the first byte of a value of `node` whose parent (after the value) is `up`. */
export function start(node: Node, b: number, up: State): State | null {
  switch (node.kind) {
    case "object":
      return b === 0x7b ? f({ t: "obj", node, ph: "open", seen: [], cur: -1, gap: 0 }, up) : null;
    case "array":
      return b === 0x5b ? f({ t: "arr", node, ph: "open", n: 0, gap: 0 }, up) : null;
    case "string":
      return b === 0x22 ? f({ t: "str", s: 0 }, up) : null;
    case "number":
      return startNumber(node.integer, b, up);
    case "literal":
      return litStep({ t: "lit", options: node.options, pos: 0, next: null }, b, up);
    case "branch":
      return litStep({ t: "lit", options: node.prefixes, pos: 0, next: node.next }, b, up);
    case "seq":
      return start(
        node.parts[0]!,
        b,
        node.parts.length > 1 ? f({ t: "seq", parts: node.parts, i: 1 }, up) : up,
      );
    case "union":
      for (const o of node.options) {
        const s = start(o, b, up);
        if (s) return s;
      }
      return null;
    case "any":
      if (b === 0x7b) return start(ANY_OBJECT, b, up);
      if (b === 0x5b) return start(ANY_ARRAY, b, up);
      if (b === 0x22) return f({ t: "str", s: 0 }, up);
      if (b === 0x74 || b === 0x66 || b === 0x6e)
        return start({ kind: "literal", options: ANY_LITERALS }, b, up);
      return startNumber(false, b, up);
  }
}
const ANY_LITERALS = ["true", "false", "null"].map((s) => new TextEncoder().encode(s));

function startNumber(integer: boolean, b: number, up: State): State | null {
  if (b === 0x2d) return f({ t: "num", integer, ph: "sign", n: 0 }, up);
  if (b === 0x30) return f({ t: "num", integer, ph: "zero", n: 1 }, up);
  if (b >= 0x31 && b <= 0x39) return f({ t: "num", integer, ph: "int", n: 1 }, up);
  return null;
}

function litStep(fr: Extract<Frame, { t: "lit" }>, b: number, up: State): State | null {
  const keep: number[] = [];
  fr.options.forEach((o, i) => {
    if (o.length > fr.pos && o[fr.pos] === b) keep.push(i);
  });
  if (keep.length === 0) {
    // a finished option ends the literal; the byte goes to the parent
    if (fr.next === null && fr.options.some((o) => o.length === fr.pos)) return step(up, b);
    return null;
  }
  const pos = fr.pos + 1;
  const options = keep.map((i) => fr.options[i]!);
  const next = fr.next && keep.map((i) => fr.next![i]!);
  if (options.every((o) => o.length === pos))
    return next === null ? up : f({ t: "pend", node: next[0]! }, up);
  return f({ t: "lit", options, pos, next }, up);
}

const DIGIT = (b: number) => b >= 0x30 && b <= 0x39;

/** The state after byte b, or null when b cannot continue a valid prefix. */
export function step(st: State, b: number): State | null {
  const fr = st.f;
  const up = st.up!;
  switch (fr.t) {
    case "done":
      return null;
    case "pend":
      return start(fr.node, b, up);
    case "seq":
      if (fr.i < fr.parts.length)
        return start(fr.parts[fr.i]!, b, fr.i + 1 < fr.parts.length ? f({ ...fr, i: fr.i + 1 }, up) : up);
      return step(up, b);
    case "str": {
      if (fr.s === 0 && b === 0x22) return up;
      const s = strStep(fr.s, b, true);
      if (s < 0) return null;
      return s === fr.s ? st : f({ t: "str", s }, up);
    }
    case "lit":
      return litStep(fr, b, up);
    case "num":
      return numStep(st, fr, b);
    case "key":
      return keyStep(st, fr, b);
    case "obj":
      return objStep(st, fr, b);
    case "arr":
      return arrStep(st, fr, b);
  }
}

function numStep(st: State, fr: Extract<Frame, { t: "num" }>, b: number): State | null {
  const to = (ph: NumPhase, n: number) => f({ t: "num", integer: fr.integer, ph, n }, st.up);
  const frac = !fr.integer;
  switch (fr.ph) {
    case "sign":
      if (b === 0x30) return to("zero", 1);
      return DIGIT(b) ? to("int", 1) : null;
    case "zero":
    case "int":
      if (fr.ph === "int" && DIGIT(b)) return fr.n < MAX_DIGITS ? to("int", fr.n + 1) : null;
      if (frac && b === 0x2e) return to("dot", 0);
      if (frac && (b === 0x65 || b === 0x45)) return to("exp", 0);
      break;
    case "dot":
      return DIGIT(b) ? to("frac", 1) : null;
    case "frac":
      if (DIGIT(b)) return fr.n < MAX_DIGITS ? to("frac", fr.n + 1) : null;
      if (b === 0x65 || b === 0x45) return to("exp", 0);
      break;
    case "exp":
      if (b === 0x2b || b === 0x2d) return to("expsign", 0);
      return DIGIT(b) ? to("expd", 1) : null;
    case "expsign":
      return DIGIT(b) ? to("expd", 1) : null;
    case "expd":
      if (DIGIT(b)) return fr.n < MAX_EXP_DIGITS ? to("expd", fr.n + 1) : null;
      break;
  }
  if (DIGIT(b)) return null;
  return step(st.up!, b); // the number ended; the byte belongs to the parent
}

const numberDone = (ph: NumPhase) => ph === "zero" || ph === "int" || ph === "frac" || ph === "expd";

function keyStep(st: State, fr: Extract<Frame, { t: "key" }>, b: number): State | null {
  const obj = st.up!;
  const of = obj.f as Extract<Frame, { t: "obj" }>;
  const props = fr.node.props;
  if (b === 0x22 && fr.free <= 0 && !fr.cands.some((i) => props[i]!.key[fr.pos] === 0x22)) {
    const exact = fr.cands.find((i) => props[i]!.key.length === fr.pos);
    if (exact !== undefined && !of.seen.includes(exact)) return f({ ...of, cur: exact }, obj.up);
    if (exact === undefined && fr.free === 0) return f({ ...of, cur: -1 }, obj.up);
    return null;
  }
  const cands = fr.cands.filter((i) => props[i]!.key[fr.pos] === b);
  // \u escapes are refused in free keys so that a declared name has one spelling only
  const free = fr.free < 0 ? -1 : strStep(fr.free, b, false);
  if (cands.length === 0 && free < 0) return null;
  return f({ t: "key", node: fr.node, cands, pos: fr.pos + 1, free }, obj);
}

/** More members may follow: a declared one not yet seen, or any other. */
const moreKeys = (fr: Extract<Frame, { t: "obj" }>) =>
  fr.node.additional !== null || fr.seen.length < fr.node.props.length;
const requiredMet = (fr: Extract<Frame, { t: "obj" }>) => fr.node.required.every((i) => fr.seen.includes(i));

function keyFrame(node: ObjectNode, seen: readonly number[]): Frame {
  const cands = node.props.map((_, i) => i).filter((i) => node.additional !== null || !seen.includes(i));
  return { t: "key", node, cands, pos: 0, free: node.additional !== null ? 0 : -1 };
}

function objStep(st: State, fr: Extract<Frame, { t: "obj" }>, b: number): State | null {
  const up = st.up!;
  if (WS(b)) {
    const gap = gapStep(fr.gap, b);
    return gap < 0 ? null : f({ ...fr, gap }, up);
  }
  const at = (ph: ObjPhase, extra: Partial<Extract<Frame, { t: "obj" }>> = {}) =>
    f({ ...fr, ph, gap: 0, ...extra }, up);
  switch (fr.ph) {
    case "open":
    case "comma":
      if (b === 0x22 && moreKeys(fr)) return f(keyFrame(fr.node, fr.seen), at("colon"));
      if (b === 0x7d && fr.ph === "open" && requiredMet(fr)) return up;
      return null;
    case "colon":
      return b === 0x3a ? at("value") : null;
    case "value": {
      const node = fr.cur >= 0 ? fr.node.props[fr.cur]!.node : fr.node.additional!;
      const seen = fr.cur >= 0 ? [...fr.seen, fr.cur] : fr.seen;
      return start(node, b, at("after", { seen, cur: -1 }));
    }
    case "after":
      if (b === 0x2c && moreKeys(fr)) return at("comma");
      if (b === 0x7d && requiredMet(fr)) return up;
      return null;
  }
}

function arrStep(st: State, fr: Extract<Frame, { t: "arr" }>, b: number): State | null {
  const up = st.up!;
  if (WS(b)) {
    const gap = gapStep(fr.gap, b);
    return gap < 0 ? null : f({ ...fr, gap }, up);
  }
  const { min, max } = fr.node;
  switch (fr.ph) {
    case "open":
      if (b === 0x5d && min === 0) return up;
      if (max === 0) return null;
      return start(fr.node.items, b, f({ ...fr, ph: "after", n: 1, gap: 0 }, up));
    case "comma":
      return start(fr.node.items, b, f({ ...fr, ph: "after", n: fr.n + 1, gap: 0 }, up));
    case "after":
      if (b === 0x2c && fr.n < max) return f({ ...fr, ph: "comma", gap: 0 }, up);
      if (b === 0x5d && fr.n >= min) return up;
      return null;
  }
}

/** The text so far is a complete value: the generation may stop here. */
export function accepting(st: State): boolean {
  const fr = st.f;
  switch (fr.t) {
    case "done":
      return true;
    case "num":
      return numberDone(fr.ph) && accepting(st.up!);
    case "lit":
      return fr.next === null && fr.options.some((o) => o.length === fr.pos) && accepting(st.up!);
    case "seq":
      return fr.i >= fr.parts.length && accepting(st.up!);
    default:
      return false;
  }
}

/** Feeds bytes; null as soon as one is refused. */
export function feed(st: State | null, bytes: Uint8Array): State | null {
  for (let i = 0; i < bytes.length && st; i++) st = step(st, bytes[i]!);
  return st;
}

/** Whether the state is plain string content, where any byte sequence of ordinary characters loops. */
export function inPlainString(st: State): boolean {
  const fr = st.f;
  return (fr.t === "str" && fr.s === 0) || (fr.t === "key" && fr.cands.length === 0 && fr.free === 0);
}

/** One byte that moves towards a complete value (-1 when complete and nothing may follow). */
export function closer(st: State): number {
  const fr = st.f;
  switch (fr.t) {
    case "done":
      return -1;
    case "pend":
      return first(fr.node);
    case "seq":
      return fr.i < fr.parts.length ? first(fr.parts[fr.i]!) : closer(st.up!);
    case "str":
      if (fr.s === 0) return 0x22;
      if (fr.s === 1) return 0x22;
      if (fr.s < 100) return 0x30;
      return RANGES[fr.s % 10]![0];
    case "lit": {
      if (fr.next === null && fr.options.some((o) => o.length === fr.pos)) return closer(st.up!);
      return fr.options.find((o) => o.length > fr.pos)![fr.pos]!;
    }
    case "num":
      return numberDone(fr.ph) ? closer(st.up!) : 0x30;
    case "key": {
      if (fr.free > 0) return closer({ f: { t: "str", s: fr.free }, up: null });
      const of = st.up!.f as Extract<Frame, { t: "obj" }>;
      const props = fr.node.props;
      const open = fr.cands.filter((i) => !of.seen.includes(i));
      const want = open.find((i) => fr.node.required.includes(i)) ?? (fr.free < 0 ? open[0] : undefined);
      if (want !== undefined) return props[want]!.key.length === fr.pos ? 0x22 : props[want]!.key[fr.pos]!;
      // a free key: close it, unless it spells a declared name already seen
      const exact = fr.cands.find((i) => props[i]!.key.length === fr.pos);
      return exact !== undefined && of.seen.includes(exact) ? 0x5f : 0x22;
    }
    case "obj":
      switch (fr.ph) {
        case "open":
          return requiredMet(fr) ? 0x7d : 0x22;
        case "comma":
          return 0x22;
        case "colon":
          return 0x3a;
        case "value":
          return first(fr.cur >= 0 ? fr.node.props[fr.cur]!.node : fr.node.additional!);
        case "after":
          return requiredMet(fr) ? 0x7d : 0x2c;
      }
      break;
    case "arr":
      if (fr.ph === "comma") return first(fr.node.items);
      return fr.n >= fr.node.min ? 0x5d : fr.ph === "open" ? first(fr.node.items) : 0x2c;
  }
  return -1;
}

/** The byte a value of this node most simply begins with. */
function first(n: Node): number {
  switch (n.kind) {
    case "object":
      return 0x7b;
    case "array":
      return 0x5b;
    case "string":
      return 0x22;
    case "number":
    case "any":
      return 0x30;
    case "literal":
      return n.options.reduce((a, b) => (b.length < a.length ? b : a))[0]!;
    case "branch":
      return n.prefixes[0]![0]!;
    case "seq":
      return first(n.parts[0]!);
    case "union":
      return first(n.options[0]!);
  }
}
