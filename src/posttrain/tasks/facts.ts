// Short factual questions answerable from the pre-training corpus (assets/pretrain-corpus/, what `herd
// pretrain --demo` trains on): "In <book>, which word comes after "<three words>"?". The questions are
// derived deterministically: over the whole corpus (Project Gutenberg licence text cut off), every
// three-word context seen at least MIN_COUNT times that is ALWAYS followed by the same word of four or
// more letters. A model that has learnt those phrases during pre-training can answer; nothing else is
// asked. The book named is the first that has the phrase. The wrong answer is another question's
// answer. Honest limits: the pool holds a couple of thousand questions, and many are collocations
// ("said the White" → "Rabbit") rather than facts about the world.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { packageRoot } from "../../core/paths.js";
import type { Rng } from "../../core/rng.js";
import type { Item } from "./checker.js";

/** Times a context must occur (always with the same next word) to be asked about. */
export const MIN_COUNT = 3;

export interface Fact {
  context: string;
  answer: string;
  title: string;
  count: number;
}

let pool: Fact[] | null = null;

/** The book's short title from the manifest's "Author, Title (note)" (tinyshakespeare's is no book title). */
function shortTitle(title: string): string {
  const t = title.replace(/\s*\(.*\)\s*$/, "");
  const comma = t.indexOf(", ");
  if (comma >= 0) return t.slice(comma + 2);
  return t === "Shakespeare excerpts" ? "Shakespeare's plays" : t;
}

/** The corpus text without the Project Gutenberg header and licence. */
function bodyText(text: string): string {
  const start = /\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG[^\n]*\n/i.exec(text);
  const end = /\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG/i.exec(text);
  return text.slice(start ? start.index + start[0].length : 0, end ? end.index : text.length);
}

/** Every question the corpus yields, in a fixed order (by context). */
export function factPool(): Fact[] {
  if (pool) return pool;
  const dir = join(packageRoot(), "assets", "pretrain-corpus");
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as {
    file: string;
    title: string;
  }[];
  // context → its next word, how often, the first book it is in; next is null once two words followed it
  const seen = new Map<string, { next: string | null; count: number; title: string }>();
  for (const m of manifest) {
    const text = gunzipSync(readFileSync(join(dir, m.file))).toString("utf8");
    const words = bodyText(text).match(/[A-Za-z]+(?:'[a-z]+)?/g) ?? [];
    const title = shortTitle(m.title);
    for (let i = 0; i + 3 < words.length; i++) {
      const ctx = `${words[i]} ${words[i + 1]} ${words[i + 2]}`;
      const w = words[i + 3]!;
      const e = seen.get(ctx);
      if (!e) seen.set(ctx, { next: w, count: 1, title });
      else if (e.next === w) e.count++;
      else e.next = null;
    }
  }
  const out: Fact[] = [];
  for (const [context, e] of seen)
    if (e.next !== null && e.count >= MIN_COUNT && e.next.length >= 4)
      out.push({ context, answer: e.next, title: e.title, count: e.count });
  out.sort((a, b) => (a.context < b.context ? -1 : a.context > b.context ? 1 : 0));
  pool = out;
  return out;
}

/** The question of `fact`; the wrong answer is drawn from the other answers. */
export function factItem(fact: Fact, rng: Rng): Item {
  const all = factPool();
  let wrong = fact.answer;
  while (wrong.toLowerCase() === fact.answer.toLowerCase())
    wrong = all[Math.floor(rng.next() * all.length)]!.answer;
  return {
    task: {
      id: "",
      kind: "facts",
      messages: [
        {
          role: "user",
          content: `In ${fact.title}, which word comes after "${fact.context}"? Answer with that word.`,
        },
      ],
      check: { kind: "facts", answer: fact.answer },
    },
    correct: fact.answer,
    wrong,
  };
}
