// The seeded task generator and its files. Each kind draws from its own stream of src/core/rng.ts's
// generator (seeded from the seed and the kind), and items are kept only if their prompt is new: the
// first `heldout` new items of the stream form the held-out split and the next `train` the training
// split, so the splits never share a prompt, and the held-out split of a seed stays the same whatever
// the training size. Kinds take turns (item j of a split is of kind j mod kinds). writeTaskFiles writes,
// for each split, sft.jsonl (`messages` dialogs with the correct answer), prompts.jsonl (the prompt and
// what the checker needs: a Task), preferences.jsonl (TRL's conversational `prompt`/`chosen`/`rejected`),
// each atomically, and tasks.json (what made them). readTasks reads prompts.jsonl back, checked line by line.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fmix32, Rng } from "../../core/rng.js";
import { writeFileAtomic } from "../../io/atomic.js";
import { type ArithmeticOptions, arithmeticItem } from "./arithmetic.js";
import { type CheckSpec, checkSpecProblem, type Item, TASK_KINDS, type TaskKind } from "./checker.js";
import { factItem, factPool } from "./facts.js";
import { instructionItem } from "./instructions.js";

export interface TaskOptions {
  seed: number;
  train: number;
  heldout: number;
  kinds?: readonly TaskKind[];
  /** The arithmetic problems' difficulty (steps per problem). */
  arithmetic?: ArithmeticOptions;
}

export interface TaskSplits {
  train: Item[];
  heldout: Item[];
}

const SALT: Record<TaskKind, number> = {
  arithmetic: 0x61726974,
  instructions: 0x696e7374,
  facts: 0x66616374,
};

/** FNV-1a of a string, as 8 hex digits (item ids). */
function hash8(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}

/** `need` items of one kind with distinct prompts, in stream order. */
function drawKind(kind: TaskKind, seed: number, need: number, arith: ArithmeticOptions = {}): Item[] {
  const rng = new Rng(fmix32((seed ^ SALT[kind]) >>> 0));
  const out: Item[] = [];
  const seen = new Set<string>();
  if (kind === "facts") {
    const facts = factPool();
    if (need > facts.length)
      throw new Error(
        `tasks: the corpus yields ${facts.length} fact questions; ${need} were asked for (train + held-out)`,
      );
    for (const i of rng.permutation(facts.length).subarray(0, need)) out.push(factItem(facts[i]!, rng));
  } else {
    for (let tries = 0; out.length < need; tries++) {
      if (tries > 50 * need + 1000)
        throw new Error(`tasks: only ${out.length} distinct ${kind} prompts found; ${need} were asked for`);
      const item = kind === "arithmetic" ? arithmeticItem(rng, arith) : instructionItem(rng);
      const key = item?.task.messages.map((m) => m.content).join("\n");
      if (!item || seen.has(key!)) continue;
      seen.add(key!);
      out.push(item);
    }
  }
  for (const it of out) it.task.id = `${kind}-${hash8(it.task.messages.map((m) => m.content).join("\n"))}`;
  return out;
}

/** How many of `total` items kind j gets when kinds take turns. */
const share = (total: number, kinds: number, j: number) =>
  Math.floor(total / kinds) + (j < total % kinds ? 1 : 0);

/** The held-out and training items for `opts`. */
export function generateTasks(opts: TaskOptions): TaskSplits {
  const kinds = opts.kinds ?? TASK_KINDS;
  if (kinds.length === 0) throw new Error("tasks: no kinds");
  for (const k of kinds)
    if (!TASK_KINDS.includes(k))
      throw new Error(`tasks: unknown kind '${k}' (have: ${TASK_KINDS.join(", ")})`);
  const per = kinds.map((k, j) => {
    const h = share(opts.heldout, kinds.length, j);
    const items = drawKind(k, opts.seed, h + share(opts.train, kinds.length, j), opts.arithmetic);
    return { heldout: items.slice(0, h), train: items.slice(h) };
  });
  const interleave = (split: "train" | "heldout", total: number) =>
    Array.from({ length: total }, (_, i) => per[i % kinds.length]![split][Math.floor(i / kinds.length)]!);
  return { train: interleave("train", opts.train), heldout: interleave("heldout", opts.heldout) };
}

const jsonl = (rows: readonly unknown[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join("");

/** The three files of one split's items in `dir`. */
export function writeSplit(dir: string, items: readonly Item[]): void {
  writeFileAtomic(
    join(dir, "sft.jsonl"),
    jsonl(
      items.map((it) => ({ messages: [...it.task.messages, { role: "assistant", content: it.correct }] })),
    ),
  );
  writeFileAtomic(join(dir, "prompts.jsonl"), jsonl(items.map((it) => it.task)));
  writeFileAtomic(
    join(dir, "preferences.jsonl"),
    jsonl(
      items.map((it) => ({
        prompt: it.task.messages,
        chosen: [{ role: "assistant", content: it.correct }],
        rejected: [{ role: "assistant", content: it.wrong }],
      })),
    ),
  );
}

/** Generate and write `out`/{train,heldout}/{sft,prompts,preferences}.jsonl and `out`/tasks.json. */
export function writeTaskFiles(out: string, opts: TaskOptions): TaskSplits {
  const splits = generateTasks(opts);
  writeSplit(join(out, "train"), splits.train);
  writeSplit(join(out, "heldout"), splits.heldout);
  const kinds = opts.kinds ?? TASK_KINDS;
  writeFileAtomic(join(out, "tasks.json"), `${JSON.stringify({ version: 1, ...opts, kinds }, null, 2)}\n`);
  return splits;
}

const ROLES = ["system", "user", "assistant", "ipython", "tool"];

/** A prompt to sample for: a Task, or just `messages` (a reward model needs no check). */
export interface PromptRow {
  id: string;
  kind?: TaskKind;
  messages: { role: string; content: string }[];
  check?: CheckSpec;
}

/** A prompts.jsonl file, each line checked (errors name the file, line and field). */
export function readTasks(path: string): PromptRow[] {
  const out: PromptRow[] = [];
  const lines = readFileSync(path, "utf8").split("\n");
  for (const [i, line] of lines.entries()) {
    if (line.trim() === "") continue;
    const at = `${path}:${i + 1}`;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new Error(`${at}: not JSON (${(e as Error).message})`);
    }
    if (typeof row !== "object" || row === null || Array.isArray(row))
      throw new Error(`${at}: not a JSON object`);
    const msgs = row.messages;
    if (!Array.isArray(msgs) || msgs.length === 0)
      throw new Error(`${at}: field 'messages' must be a non-empty list`);
    for (const [j, m] of msgs.entries()) {
      const ok = m && typeof m === "object" && ROLES.includes(m.role) && typeof m.content === "string";
      if (!ok)
        throw new Error(
          `${at}: field 'messages[${j}]' needs a 'role' (${ROLES.join(", ")}) and a string 'content'`,
        );
      if (m.role === "assistant" && j === msgs.length - 1)
        throw new Error(
          `${at}: field 'messages[${j}]' is an assistant message; a prompt ends before the answer`,
        );
    }
    const check = row.check as CheckSpec | undefined;
    const problem = check === undefined ? null : checkSpecProblem(check);
    if (problem) throw new Error(`${at}: field '${problem.replace(/: /, "' ")}`);
    const id = typeof row.id === "string" ? row.id : `line-${i + 1}`;
    const kind = TASK_KINDS.includes(row.kind as TaskKind) ? { kind: row.kind as TaskKind } : {};
    out.push({ id, ...kind, messages: msgs, ...(check ? { check } : {}) });
  }
  return out;
}
