// A line budget per folder (as tinygrad's sz.py): the non-blank lines of code in each folder under src/,
// and in native/, assembly/, bench/, scripts/ and test/ as wholes, must stay within the table below, set
// about 10% above their sizes when it was written. Growth is then a decision, not a drift: a change that
// needs more raises the budget in the same commit and says why in its message. Counted: .ts, .mjs, .js,
// .cc, .h, .sh and .py files; not fixtures, build outputs or shipped word lists (data, not code).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { repoPath } from "./helpers.js";

/** Non-blank lines allowed, by folder (sizes on 2026-12-07 in the comment). */
const BUDGET: Record<string, number> = {
  "src/core": 1050, // 959: core/schema.ts, the one declarative config schema (#15 item 4), landed with the budget
  "src/io": 250, // 222
  "src/backends": 3450, // 2808; +350 for the K-quant references and their native dispatch (#19)
  "src/tensor": 1850, // 1678
  "src/tokenizer": 2100, // 1906
  "src/data": 5000, // 4533
  "src/model": 5500, // 4233: + GGUF read/write with its Llama metadata and vocabulary (checkpoint/gguf*.ts, issue 19); +400 for ggml's K-quant quantisers and the Q4_K_M/Q5_K_M writer (#19); +~150 for the K-quants loaded as stored and forwardRows (per-row caches for serving, #18)
  "src/train": 2200, // 1996
  "src/scale": 750, // 646: herd plan, the cluster planner (memory, step time, layout search, calibration, reliability: #21)
  "src/generate": 950, // 665; +115 for shared.ts (K samples of one prompt decoded as one batch, #16); +~200 for stop strings and a prefix cache in shared decoding (#17)
  "src/posttrain": 3700, // #16: LoRA (lora.ts, peft.ts) ~550, rejection sampling and tasks/ ~800, SFT/RM/DPO/averaging and their data and loop ~1700 (3058 in all); +~330 for the rounds (rounds.ts) and the reward scorer
  "src/eval": 3450, // 737, then 1460 with eval/code/ (HumanEval, the bubblewrap sandbox and its seccomp filter, pass@k: #17), then about 3000 with the harness (#17: tasks, readers, prompts, scoring, reports); +~70 for herd_tasks (the small recipe's held-out checker task)
  "src/serve": 4700, // 3660, then 3753; +~900 for the web chat page, multi-LoRA serving and the code interpreter (#18). 3660: the OpenAI-compatible server (engine with continuous batching and a prefix cache, worker thread, fastify routes) and its features (structured output, tool calls, guard), #18
  "src/recipe": 340, // 144; ~300 with the small post-training recipe end to end (smallRecipe.ts, #16/#17)
  "src/cli": 3600, // 1638, then 3411 with herd plan (#21), --lora and --code-interpreter (#18); 1907 with herd eval and herd eval compare (#17); ~2140 with herd lora; +180 for herd tasks and herd rs; +300 for herd sft, rm, dpo, average (#16); +~170 for herd serve (#18) and the LoRA options of sft/dpo (#16)
  native: 4900, // 3631, then 4191; +~300 for the int8-activation Q8_0/Q4_0 dot kernels (#19); +~560 for the K-quant kernels (kquant.cc, #19)
  assembly: 1450, // 1307
  bench: 2650, // 1375; ~1500 with bench lora and eval; +60 for bench rs, +90 for bench posttrain (#16); +150 for bench llamacpp (#19); +~350 for bench serve, structured and kquant (#18, #19)
  scripts: 300, // 185; ~240 with scripts/small-recipe.mjs (#16/#17)
  test: 21300, // 11163, then 18546 (+~1000 for web e2e, LoRA serving, code interpreter, int8 kernels: #18, #19); 12543 with the evaluation harness's tests (#17); +550 for the task generator, rejection sampling and shared decode tests, +850 for the SFT/RM/DPO/average tests (#16); +600 for the GGUF tests (container, fuzz, round trip, K-quants, llama.cpp; #19); +~1900 for the serving tests (engine, HTTP with the openai client, structured output, tool calls, guard: #18), the LoRA CLI and resume tests (#16), K-quant kernels and quantisers (#19)
};

const CODE = /\.(ts|mjs|js|cc|h|sh|py)$/;
const SKIP = new Set(["fixtures", "build", "wordlists", "node_modules"]);

function lines(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) n += lines(p);
    else if (e.isFile() && CODE.test(e.name) && !e.name.endsWith(".d.ts"))
      n += readFileSync(p, "utf8")
        .split("\n")
        .filter((l) => l.trim() !== "").length;
  }
  return n;
}

test("every folder stays within its line budget", () => {
  const folders = readdirSync(repoPath("src"), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => `src/${e.name}`);
  for (const f of folders)
    assert.ok(f in BUDGET, `${f} has no line budget: add it to BUDGET in test/budget.test.ts`);
  const over = Object.entries(BUDGET)
    .map(([folder, budget]) => ({ folder, budget, n: lines(repoPath(...folder.split("/"))) }))
    .filter((r) => r.n > r.budget);
  assert.deepEqual(
    over.map((r) => `${r.folder}: ${r.n} non-blank lines, budget ${r.budget}`),
    [],
    "growth is a decision: raise the folder's budget in test/budget.test.ts in the same commit, and say why there",
  );
});
