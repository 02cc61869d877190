// GSM8K in lm-evaluation-harness's three forms, each its own name:
// - `gsm8k`: 5-shot "Question: …\nAnswer:" with the train split's worked answers (the harness samples
//   them at random; here the first K), strict-match `#### N` and flexible-extract (the last number);
// - `gsm8k_cot`: 8-shot chain of thought with Wei et al.'s exemplars ("The answer is N."), the paper's
//   protocol (spec §10.2);
// - `gsm8k_cot_llama`: Meta's variant, the same exemplars ending "The final answer is N", for instruct
//   models in the chat format.
// Greedy, stopped at the task's strings; exact match after dropping commas, "$", text up to "#### " and a
// final ".", case-insensitive (the harness's regexes_to_ignore).
import { type Gsm8kDoc, readGsm8kJsonl } from "../datasets.js";
import { buildTurns, type Shot } from "../prompt.js";
import type { Subtask, TaskContext, TaskSpec } from "../task.js";
import { dataPath, type Filter, FLEXIBLE, generateItem, limited, regexFilter } from "./common.js";

/** Wei et al.'s eight exemplars: question, reasoning, answer (gsm8k-cot.yaml / gsm8k-cot-llama.yaml). */
export const COT_EXEMPLARS: readonly [string, string, number][] = [
  [
    "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?",
    "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6.",
    6,
  ],
  [
    "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
    "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5.",
    5,
  ],
  [
    "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
    "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39.",
    39,
  ],
  [
    "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason give to Denny?",
    "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8.",
    8,
  ],
  [
    "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
    "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9.",
    9,
  ],
  [
    "There were nine computers in the server room. Five more computers were installed each day, from monday to thursday. How many computers are now in the server room?",
    "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers were added. 9 + 20 is 29.",
    29,
  ],
  [
    "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls did he have at the end of wednesday?",
    "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he had 35 - 2 = 33 golf balls.",
    33,
  ],
  [
    "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
    "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. 23 - 15 is 8.",
    8,
  ],
];

const IGNORE = { ignoreCase: true, regexesToIgnore: [",", "\\$", "(?s).*#### ", "\\.$"] };

/** The number after "####" in a GSM8K answer. */
export const gsm8kAnswer = (d: Gsm8kDoc): string => d.answer.split("####").pop()!.trim();

interface Form {
  name: string;
  text: (q: string) => string;
  shots: (ctx: TaskContext) => Shot[];
  target: (d: Gsm8kDoc) => string;
  until: string[];
  filters: Filter[];
  targetDelimiter?: string;
  version: number;
}

function build(form: Form, ctx: TaskContext): Subtask[] {
  const all = readGsm8kJsonl(dataPath(ctx, "gsm8k", "test.jsonl"));
  const shots = form.shots(ctx);
  const gen = { until: form.until, maxNewTokens: 256 };
  const td = form.targetDelimiter;
  return [
    {
      name: form.name,
      original: all.length,
      nShot: shots.length,
      version: form.version,
      metrics: Object.fromEntries(form.filters.map((f) => [`exact_match,${f.name}`, true])),
      config: { output_type: "generate_until", generation_kwargs: gen, target_delimiter: td ?? " " },
      items: limited(all, ctx).map((d, i) =>
        generateItem(
          i,
          buildTurns({
            shots,
            text: form.text(d.question),
            ...(td === undefined ? {} : { targetDelimiter: td }),
          }),
          form.target(d),
          gen,
          form.filters,
          IGNORE,
        ),
      ),
    },
  ];
}

const cotShots = (k: number, final: (n: number) => string) =>
  COT_EXEMPLARS.slice(0, k).map(([q, r, n]) => ({ q, target: `${r} ${final(n)}` }));

const gsm8kText = (q: string) => `Question: ${q}\nAnswer:`;
const cotText = (q: string) => `Q: ${q}\nA:`;
const llamaText = (q: string) =>
  `Given the following problem, reason and give a final answer to the problem.\nProblem: ${q}\nYour response should end with "The final answer is [answer]" where [answer] is the response to the problem.\n`;

export const gsm8k: TaskSpec = {
  name: "gsm8k",
  summary: "GSM8K, 5-shot Question/Answer, strict-match '#### N' and flexible-extract",
  build: (ctx) =>
    build(
      {
        name: "gsm8k",
        text: gsm8kText,
        shots: (c) =>
          readGsm8kJsonl(dataPath(c, "gsm8k", "train.jsonl"))
            .slice(0, c.shots ?? 5)
            .map((d) => ({ text: gsm8kText(d.question), target: d.answer })),
        target: (d) => d.answer,
        until: ["Question:", "</s>", "<|im_end|>"],
        filters: [regexFilter("strict-match", "#### (\\-?[0-9\\.\\,]+)"), FLEXIBLE],
        version: 3,
      },
      ctx,
    ),
};

export const gsm8kCot: TaskSpec = {
  name: "gsm8k_cot",
  summary: 'GSM8K, 8-shot chain of thought (Wei et al.\'s exemplars, "The answer is N.")',
  build: (ctx) =>
    build(
      {
        name: "gsm8k_cot",
        text: cotText,
        shots: (c) =>
          cotShots(c.shots ?? 8, (n) => `The answer is ${n}.`).map((s) => ({
            text: cotText(s.q),
            target: s.target,
          })),
        target: gsm8kAnswer,
        until: ["Q:", "</s>", "<|im_end|>"],
        filters: [regexFilter("strict-match", "The answer is (\\-?[0-9\\.\\,]+)."), FLEXIBLE],
        version: 3,
      },
      ctx,
    ),
};

export const gsm8kCotLlama: TaskSpec = {
  name: "gsm8k_cot_llama",
  summary: 'GSM8K, Meta\'s 8-shot chain of thought ("The final answer is N"), for instruct models',
  build: (ctx) =>
    build(
      {
        name: "gsm8k_cot_llama",
        text: llamaText,
        shots: (c) =>
          cotShots(c.shots ?? 8, (n) => `The final answer is ${n}`).map((s) => ({
            text: llamaText(s.q),
            target: s.target,
          })),
        target: gsm8kAnswer,
        until: ["<|eot_id|>", "<|start_header_id|>user<|end_header_id|>", "Q:", "</s>", "<|im_end|>"],
        filters: [
          regexFilter("strict-match", "The final answer is ((-?[$0-9.,]{2,})|(-?[0-9]+))", -1),
          FLEXIBLE,
        ],
        targetDelimiter: "",
        version: 4,
      },
      ctx,
    ),
};
