// The tasks against lm-evaluation-harness: prompts byte for byte equal to the harness's rendering of the
// same documents (test/fixtures/eval/expected-prompts.json, rendered from the harness's YAMLs by
// render_expected.py), answer extraction and exact match on a table of tricky outputs, the metrics
// against their closed forms, and the readers' errors naming file and line.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { getBackend, setBackend } from "../../src/backends/index.js";
import { parseCsv, readArcJsonl, readGsm8kJsonl, readMgsmTsv, readMmluCsv } from "../../src/eval/datasets.js";
import { stopIdsFor } from "../../src/eval/harness.js";
import { type Decoder, llamaDecoder, llamaPrefix, replayPrefix } from "../../src/eval/niah.js";
import { promptIds, renderText } from "../../src/eval/prompt.js";
import { resolveTasks } from "../../src/eval/registry.js";
import { exactMatch, meanStderr, pooledStderr, regexExtract, type TaskSpec } from "../../src/eval/task.js";
import { multiNeedle, multiNeedleRecall } from "../../src/eval/tasks/custom.js";
import { PieceVocab, tiktokenCodec } from "../../src/generate/index.js";
import { type Llama, loadModel } from "../../src/model/index.js";
import { Tokenizer } from "../../src/tokenizer/index.js";
import { repoPath } from "../helpers.js";
import { countForwards } from "./forwards.js";

const dataDir = repoPath("test", "fixtures", "eval");
const ctx = { dataDir, chat: false, limit: 1 };
const tmp = mkdtempSync(join(tmpdir(), "herd-evaltasks-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const subtask = (task: string, name: string, c = ctx) =>
  (resolveTasks([task])[0] as TaskSpec).build(c).find((s) => s.name === name)!;

test("prompts equal the harness's rendering of the same documents, byte for byte", () => {
  const expected = JSON.parse(readFileSync(join(dataDir, "expected-prompts.json"), "utf8")) as {
    task: string;
    doc: number;
    prompt: string;
  }[];
  const owner: Record<string, string> = {
    mmlu_anatomy: "mmlu",
    mmlu_llama_anatomy: "mmlu_llama",
    gsm8k: "gsm8k",
    gsm8k_cot: "gsm8k_cot",
    gsm8k_cot_llama: "gsm8k_cot_llama",
    mgsm_native_cot_de: "mgsm_native_cot",
  };
  assert.equal(expected.length, 6);
  for (const e of expected) {
    const t = subtask(owner[e.task]!, e.task);
    assert.equal(renderText(t.items[e.doc]!.request.turns), e.prompt, e.task);
  }
  assert.equal(subtask("gsm8k_cot", "gsm8k_cot").nShot, 8);
  assert.equal(subtask("mmlu", "mmlu_anatomy").nShot, 5);
  assert.equal(subtask("arc_challenge", "arc_challenge").nShot, 25);
  assert.equal(subtask("mgsm_native_cot", "mgsm_native_cot_zh").items.length, 1);
  assert.equal(
    resolveTasks(["mgsm_native_cot"])[0] &&
      (resolveTasks(["mgsm_native_cot"])[0] as TaskSpec).build(ctx).length,
    11,
  );
  // Multiple choice: the continuation carries the target delimiter, as the harness builds it.
  const r = subtask("mmlu", "mmlu_anatomy").items[0]!.request;
  assert.deepEqual(r.type === "loglikelihood" && r.choices, [" A", " B", " C", " D"]);
  assert.throws(() => resolveTasks(["mmlu", "nope"]), /unknown task 'nope' \(known: mmlu, /);
});

test("instruct models get the Llama 3.1 dialog with exactly one <|begin_of_text|>", () => {
  const codec = tiktokenCodec(Tokenizer.llama3());
  const t = subtask("mmlu_llama", "mmlu_llama_anatomy", { ...ctx, chat: true });
  const ids = promptIds(t.items[0]!.request.turns, codec, 128000, true);
  assert.equal(ids.filter((i) => i === 128000).length, 1);
  assert.equal(ids[0], 128000);
  const text = codec.decode(ids);
  assert.ok(
    text.startsWith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nGiven the following"),
  );
  // Five shots as user/assistant turns, then the open assistant turn continuing the generation prefix.
  assert.equal(text.split("<|start_header_id|>assistant<|end_header_id|>").length - 1, 6);
  assert.ok(
    text.includes("<|start_header_id|>assistant<|end_header_id|>\n\nThe best answer is B.<|eot_id|>"),
  );
  assert.ok(text.endsWith("<|start_header_id|>assistant<|end_header_id|>\n\nThe best answer is"));
  const base = promptIds(t.items[0]!.request.turns, codec, 128000, false);
  assert.equal(base.filter((i) => i === 128000).length, 1);
});

const IGNORE = { ignoreCase: true, regexesToIgnore: [",", "\\$", "(?s).*#### ", "\\.$"] };
const STRICT = "#### (\\-?[0-9\\.\\,]+)";
const COT = "The answer is (\\-?[0-9\\.\\,]+).";
const LLAMA = "The final answer is ((-?[$0-9.,]{2,})|(-?[0-9]+))";
const FLEX = "(-?[$0-9.,]{2,})|(-?[0-9]+)";

test("answer extraction and exact match on tricky outputs", () => {
  // [output, pattern, group, extracted, target, match]
  const table: [string, string, number, string, string, number][] = [
    ["She earns 9 * 2 = 18 dollars.\n#### 18", STRICT, 0, "18", "18", 1],
    ["#### 1,234", STRICT, 0, "1,234", "1234", 1], // commas ignored
    ["#### $1,000", STRICT, 0, "[invalid]", "1000", 0], // strict takes no $
    ["so $1,000 in total", FLEX, -1, "$1,000", "1000", 1], // flexible keeps $, match drops it
    ["#### -5", STRICT, 0, "-5", "-5", 1], // negatives
    ["3 + 4 = 7, then 7 * 2 = 14 apples, 12 left", FLEX, -1, "12", "12", 1], // the last number
    ["The answer is 18. I hope that helps! 99", COT, 0, "18.", "18", 1], // trailing text: greedy takes "18."
    ["The answer is 18.", COT, 0, "18", "18", 1],
    ["I do not know.", COT, 0, "[invalid]", "18", 0], // no answer
    ["I do not know", FLEX, -1, "[invalid]", "18", 0],
    ["The final answer is $18.00", LLAMA, -1, "$18.00", "18", 0], // 18.00 ≠ 18 in the harness too
    ["The final answer is 7. The final answer is 8", LLAMA, -1, "8", "8", 1],
    ["so the total is 18.", FLEX, -1, "18.", "18", 1], // a final "." is ignored
  ];
  for (const [out, pat, group, want, target, match] of table) {
    const got = regexExtract(out, pat, group);
    assert.equal(got, want, out);
    assert.equal(exactMatch(got, target, IGNORE), match, out);
  }
  // MGSM ignores case and punctuation (Python's string.punctuation, "-" included).
  const p = { ignoreCase: true, ignorePunctuation: true };
  assert.equal(
    exactMatch(regexExtract("Die Antwort lautet 1.000", "Die Antwort lautet (\\-?[0-9\\.\\,]+)"), "1000", p),
    1,
  );
  // mmlu_cot_llama takes the last "best answer is X"; mmlu_llama strips whitespace, ignores "." and "$".
  assert.equal(
    regexExtract("best answer is B... no, the best answer is D.", "best answer is ([A-Z])", -1),
    "D",
  );
  const mc = { ignoreCase: true, ignorePunctuation: true, regexesToIgnore: ["\\$", "\\.$"] };
  assert.equal(exactMatch(" B".trim(), "B.", mc), 1);
  assert.equal(exactMatch("C", "B.", mc), 0);
});

test("a generated item scores every filter under its own key", async () => {
  const item = subtask("gsm8k_cot", "gsm8k_cot").items[0]!;
  assert.equal(item.target, "18");
  const s = await item.score({
    type: "generate_until",
    outputs: ["16 - 3 - 4 = 9 eggs, 9 * 2 = 18. The answer is 18.\n\n"],
  });
  assert.deepEqual(s.metrics, { "exact_match,strict-match": 1, "exact_match,flexible-extract": 1 });
  const w = await item.score({ type: "generate_until", outputs: ["The answer is 17. Or 18"] });
  assert.deepEqual(w.metrics, { "exact_match,strict-match": 0, "exact_match,flexible-extract": 1 });
});

test("stderr is the harness's: sample sd over √n, pooled over subtasks", () => {
  assert.equal(meanStderr([1, 0, 1, 1]), 0.25); // mean .75, s² = (3·.0625 + .5625)/3 = .25
  assert.equal(meanStderr([1]), "N/A");
  // Two subtasks of 2 with stderr .5: ((1·.25·2)·2 / (4 − 2)) / 4 = .125.
  assert.ok(Math.abs(pooledStderr([0.5, 0.5], [2, 2]) - Math.sqrt(0.125)) < 1e-15);
});

test("readers parse the data sets' own formats and name file and line on bad rows", () => {
  assert.deepEqual(
    parseCsv('a,"b, ""c""\nd",e\n\nx,y,z\n', "f.csv").map((r) => [r.line, r.fields]),
    [
      [1, ["a", 'b, "c"\nd', "e"]],
      [4, ["x", "y", "z"]],
    ],
  );
  assert.equal(readMmluCsv(join(dataDir, "mmlu", "test", "anatomy_test.csv")).length, 4);
  assert.equal(readArcJsonl(join(dataDir, "arc", "ARC-Challenge-Test.jsonl")).length, 10);
  assert.equal(readGsm8kJsonl(join(dataDir, "gsm8k", "test.jsonl")).length, 10);
  assert.deepEqual(readMgsmTsv(join(dataDir, "mgsm", "mgsm_en.tsv"))[0]!.answerNumber, "18");
  const bad = (name: string, body: string) => {
    const p = join(tmp, name);
    writeFileSync(p, body);
    return p;
  };
  assert.throws(
    () => readMmluCsv(bad("m.csv", "q,a,b,c,d,0\nq,a,b,c,d,E\n")),
    /m\.csv:2: field 'answer' must be 0–3 or A–D, got 'E'/,
  );
  assert.throws(() => readMmluCsv(bad("m2.csv", "q,a,b\n")), /m2\.csv:1: 3 fields, expected 6/);
  assert.throws(
    () => readGsm8kJsonl(bad("g.jsonl", '{"question":"q","answer":"#### 1"}\n{"question":1}\n')),
    /g\.jsonl:2: field 'answer' must be a string/,
  );
  assert.throws(() => readGsm8kJsonl(bad("g2.jsonl", "{nope\n")), /g2\.jsonl:1: not JSON/);
  assert.throws(
    () => readMgsmTsv(bad("t.tsv", "q\t18\nq\tmany\n")),
    /t\.tsv:2: field 'answer' must be a number/,
  );
  assert.throws(
    () =>
      readArcJsonl(
        bad(
          "a.jsonl",
          '{"question":{"stem":"s","choices":[{"text":"x","label":"A"},{"text":"y","label":"B"}]},"answerKey":"C"}\n',
        ),
      ),
    /a\.jsonl:1: field 'answerKey' 'C' is not a choice label/,
  );
});

test("generation stops on every Llama 3 end id, not only the config's eos", () => {
  const llama3 = { config: { eosTokenIds: [128001], vocabSize: 128256 } } as unknown as Llama;
  assert.deepEqual(stopIdsFor(llama3).sort(), [128001, 128008, 128009]);
  const other = { config: { eosTokenIds: [2], vocabSize: 512 } } as unknown as Llama;
  assert.deepEqual(stopIdsFor(other), [2]);
});

test("multi-needle recall: a decoder that copies what followed the key retrieves both asked needles", () => {
  const codec = PieceVocab.fromFile(repoPath("test", "fixtures", "stories260K", "vocab.json"));
  const V = 512;
  // An induction head: predict the token that followed the longest earlier match of the sequence's end.
  const copier = (): Decoder => {
    let seq: number[] = [];
    const predict = () => {
      const out = new Float32Array(V);
      let best = -1;
      let bestLen = 0;
      for (let p = 0; p < seq.length - 1; p++) {
        let k = 0;
        while (k <= p && seq[p - k] === seq[seq.length - 1 - k] && k < seq.length - 1) k++;
        if (k > bestLen) [best, bestLen] = [p + 1, k];
      }
      out[best >= 0 ? seq[best]! : 0] = 1;
      return out;
    };
    return {
      start: (prompt) => {
        seq = [...prompt];
        return predict();
      },
      next: (t) => {
        seq.push(t);
        return predict();
      },
      close: () => {},
    };
  };
  const filler = Int32Array.from(codec.encode!("The grass is green. The sky is blue. ".repeat(60)));
  const hay = (_: unknown, n: number) => Int32Array.from([1, ...filler.subarray(0, n - 1)]);
  assert.equal(
    multiNeedleRecall((p) => replayPrefix(copier, p), codec.encode!, hay, 400, 3),
    1,
  );
  const blind = (): Decoder => ({
    start: () => new Float32Array(V),
    next: () => new Float32Array(V),
    close: () => {},
  });
  assert.equal(
    multiNeedleRecall((p) => replayPrefix(blind, p), codec.encode!, hay, 400, 3),
    0,
  );
  assert.equal(
    multiNeedleRecall((p) => replayPrefix(copier, p), codec.encode!, hay, 60, 1),
    null,
  );
});

test("multi-needle: the two questions share one prefill of the haystack, retrieving exactly as the naive path (js)", async () => {
  const initial = getBackend();
  setBackend("js");
  const stories = repoPath("test", "fixtures", "stories260K");
  const model = await loadModel(stories);
  const codec = PieceVocab.fromFile(join(stories, "vocab.json"));
  const filler = Int32Array.from(
    codec.encode!("Lily and Tom went to the park. They saw a big dog. ".repeat(40)),
  );
  const hay = (_: unknown, n: number) => Int32Array.from([1, ...filler.subarray(0, n - 1)]);
  const calls = countForwards(model);
  const shared = multiNeedle((h) => llamaPrefix(model, h), codec.encode!, hay, 400, 2);
  const sharedCalls = calls.splice(0);
  const naive = multiNeedle(
    (h) => replayPrefix((n) => llamaDecoder(model, n), h),
    codec.encode!,
    hay,
    400,
    2,
  );
  assert.ok(shared !== null && naive !== null);
  assert.deepEqual(shared, naive, "the same greedy tokens, log-probabilities and ranks");
  // Shared: one forward over each haystack (a fresh cache), then only each question and its answer.
  const fresh = sharedCalls.filter((c) => c.cached === 0);
  assert.equal(fresh.length, 2, "one haystack prefill per trial");
  assert.ok(fresh.every((c) => c.tokens > 300));
  assert.ok(sharedCalls.filter((c) => c.cached > 0).every((c) => c.tokens < 100));
  // Naive: the haystack again for each of the two questions.
  assert.equal(calls.filter((c) => c.cached === 0 && c.tokens > 300).length, 4);
  model.dispose();
  setBackend(initial);
});
