// Instruction-following prompts with checkable constraints (IFEval-like, IFEval's wording): "Write about
// TOPIC." plus one to three of: a word count (at least / less than N), required keywords, JSON output,
// all lowercase or all capitals, exactly N bullet points. The correct response is built from a small
// bank of plain sentences about the topic so that it meets every constraint; the wrong one breaks one
// constraint (dropped keywords, the wrong bullet count, broken JSON, the wrong case, too few or too many
// words) and is otherwise the same. Both are verified with the checker before they are returned.
import type { Rng } from "../../core/rng.js";
import { int, pick } from "./arithmetic.js";
import { type Constraint, check, countWords, type Item } from "./checker.js";

const TOPICS: Record<string, string[]> = {
  "the sea": [
    "The sea is wide and deep.",
    "Waves roll onto the sandy shore.",
    "Fish swim under the blue water.",
    "Sailors cross the sea in ships.",
    "The salty wind blows over the waves.",
  ],
  "a cat": [
    "A cat is a small and quiet animal.",
    "It sleeps in the warm sun.",
    "The cat chases a ball of string.",
    "It drinks milk from a bowl.",
    "A happy cat will purr softly.",
  ],
  "the moon": [
    "The moon shines at night.",
    "It moves around the earth.",
    "Its light comes from the sun.",
    "People walked on the moon long ago.",
    "A full moon looks round and bright.",
  ],
  rain: [
    "Rain falls from dark clouds.",
    "It makes the grass green.",
    "People carry an umbrella in the rain.",
    "Puddles form on the road.",
    "After the rain the air smells fresh.",
  ],
  "a garden": [
    "A garden is full of plants.",
    "Flowers bloom in the spring.",
    "Bees visit every flower.",
    "The gardener waters the seeds.",
    "Tomatoes grow in the summer garden.",
  ],
  bread: [
    "Bread is made from flour and water.",
    "The baker kneads the dough.",
    "Bread bakes in a hot oven.",
    "Fresh bread smells warm and sweet.",
    "People eat bread with butter.",
  ],
  "a river": [
    "A river flows down to the sea.",
    "Its water is cold and clear.",
    "Boats float along the river.",
    "Trees grow on both banks.",
    "Children swim in the river in summer.",
  ],
  winter: [
    "Winter is the coldest season.",
    "Snow covers the hills.",
    "People wear warm coats and hats.",
    "The lake turns to ice.",
    "Nights are long in winter.",
  ],
  "a train": [
    "A train runs on long rails.",
    "It carries people between cities.",
    "The engine pulls many cars.",
    "Passengers wait at the station.",
    "A fast train can cross the country in a day.",
  ],
  music: [
    "Music is made of sounds and rhythm.",
    "People sing songs together.",
    "A piano has black and white keys.",
    "Drums keep the beat.",
    "Music can make people dance.",
  ],
};

const STOP = new Set([
  "the",
  "and",
  "from",
  "with",
  "into",
  "onto",
  "over",
  "under",
  "made",
  "make",
  "makes",
]);
const CASES = ["change_case:english_lowercase", "change_case:english_capital"] as const;

/** The instruction sentence of a constraint (IFEval's phrasing). */
function instruction(c: Constraint): string {
  switch (c.id) {
    case "length_constraints:number_words":
      return `Answer with ${c.relation} ${c.words} words.`;
    case "keywords:existence":
      return `Include the keywords ${c.keywords.join(" and ")} in the response.`;
    case "detectable_format:json_format":
      return "Wrap your entire output in JSON format.";
    case "change_case:english_lowercase":
      return "Your entire response should be in English, and in all lowercase letters.";
    case "change_case:english_capital":
      return "Your entire response should be in English, and in all capital letters.";
    case "detectable_format:number_bullet_lists":
      return `Your answer must contain exactly ${c.bullets} bullet points in markdown format, such as: * This is a point.`;
  }
}

/** The response to `sentences` under the format and case constraints. */
function render(
  sentences: readonly string[],
  format: "prose" | "bullets" | "json",
  casing: string | null,
): string {
  let text =
    format === "bullets"
      ? sentences.map((s) => `* ${s}`).join("\n")
      : format === "json"
        ? JSON.stringify({ answer: sentences.join(" ") })
        : sentences.join(" ");
  if (casing === "change_case:english_lowercase") text = text.toLowerCase();
  if (casing === "change_case:english_capital") text = text.toUpperCase();
  return text;
}

/** A fresh prompt with its responses (its id is set by the caller); null if the draw did not fit. */
export function instructionItem(rng: Rng): Item | null {
  const topic = pick(rng, Object.keys(TOPICS));
  const bank = TOPICS[topic]!;
  const n = int(rng, 2, 4);
  const start = int(rng, 0, bank.length - n);
  const sentences = bank.slice(start, start + n);
  const format = pick(rng, ["prose", "prose", "bullets", "json"] as const);
  const casing = rng.next() < 0.4 ? pick(rng, CASES) : null;
  const constraints: Constraint[] = [];
  if (format === "bullets") constraints.push({ id: "detectable_format:number_bullet_lists", bullets: n });
  if (format === "json") constraints.push({ id: "detectable_format:json_format" });
  if (casing) constraints.push({ id: casing });
  if (rng.next() < 0.5) {
    const words = [
      ...new Set(
        sentences
          .join(" ")
          .toLowerCase()
          .match(/[a-z]{4,}/g) ?? [],
      ),
    ].filter((w) => !STOP.has(w));
    const k = Math.min(words.length, int(rng, 1, 2));
    const keywords: string[] = [];
    while (keywords.length < k) {
      const w = pick(rng, words);
      if (!keywords.includes(w)) keywords.push(w);
    }
    if (k > 0) constraints.push({ id: "keywords:existence", keywords });
  }
  const correct = render(sentences, format, casing);
  if (constraints.length < 2 || rng.next() < 0.5) {
    const count = countWords(correct);
    const atLeast = rng.next() < 0.5;
    const words = atLeast ? Math.max(5, Math.floor((count - 1) / 5) * 5) : Math.ceil((count + 1) / 5) * 5;
    constraints.push({
      id: "length_constraints:number_words",
      relation: atLeast ? "at least" : "less than",
      words,
    });
  }
  // The wrong response breaks the first constraint.
  const broken = constraints[0]!;
  let wrong: string;
  switch (broken.id) {
    case "detectable_format:number_bullet_lists":
      wrong = render(n > 2 ? sentences.slice(0, -1) : bank.slice(0, 3), format, casing);
      break;
    case "detectable_format:json_format":
      wrong = correct.slice(0, -1);
      break;
    case "change_case:english_lowercase":
    case "change_case:english_capital":
      wrong = render(sentences, format, null);
      break;
    case "keywords:existence":
      wrong = broken.keywords.reduce((t, k) => t.replace(new RegExp(`\\b${k}\\b`, "gi"), "it"), correct);
      break;
    case "length_constraints:number_words":
      wrong =
        broken.relation === "at least"
          ? render(sentences.slice(0, 1), format, casing).split(" ").slice(0, 3).join(" ")
          : render([...sentences, ...bank, ...bank], format, casing);
      break;
  }
  const prompt = [`Write about ${topic}.`, ...constraints.map(instruction)].join(" ");
  const task = {
    id: "",
    kind: "instructions" as const,
    messages: [{ role: "user" as const, content: prompt }],
    check: { kind: "instructions" as const, constraints },
  };
  if (!check(task, correct).correct || check(task, wrong).correct) return null;
  return { task, correct, wrong };
}
