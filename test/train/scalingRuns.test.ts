// `herd scaling fit` over run folders in the on-disk format `herd pretrain` writes: a real tiny run is
// read back (compute from its steps with the MFU count, loss from the training fallback when there is
// no valLoss), and nine run folders of three budgets whose validation losses follow a known law give
// that law back through the CLI, with the IsoFLOP/power-law SVG; a lone run of a fourth budget is left
// out with the reason.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { pretrainEvaluator } from "../../src/eval/pretrainEvaluator.js";
import { trainingFlopsPerToken } from "../../src/train/mfu.js";
import { runPoint } from "../../src/train/scalingRuns.js";
import { modelConfig, pretrain } from "../../src/train/trainer.js";
import { repoPath } from "../helpers.js";
import { corpusShard, TINY, tempDir, tinyConfig } from "./fixture.js";

const CLI = repoPath("dist", "src", "cli", "main.js");

test("scaling fit: a real run folder — FLOPs from its steps, training loss when there is no valLoss", async () => {
  const dir = tempDir();
  const cfg = tinyConfig(dir, corpusShard(dir, 20000), {
    stages: [
      { kind: "initial", steps: 4, seqLen: 32, batch: 2, ramp: [{ afterTokens: 128, batch: 1, seqLen: 64 }] },
    ],
    eval: { every: 0, heldout: 0, tokens: 4096 }, // no held-out set: the training-loss fallback is under test
  });
  const res = await pretrain(cfg);
  const p = runPoint(res.runDir);
  const mc = modelConfig(cfg);
  assert.equal(p.tokens, 2 * 64 + 2 * 64);
  assert.equal(p.flops, 128 * trainingFlopsPerToken(mc, 32) + 128 * trainingFlopsPerToken(mc, 64));
  assert.equal(p.validation, false);
  assert.equal(p.loss, res.history.at(-1)!.loss);
  assert.match(p.lossFrom, /no valLoss/);
  assert.equal(runPoint(res.runDir, "6nd").flops, 6 * paramTotal(res.model.weights) * 256);
  res.model.dispose();
  // With the default held-out set and eval's evaluator the run's own validation loss is the point's, and its length is named.
  const dir2 = tempDir();
  const res2 = await pretrain(
    tinyConfig(dir2, corpusShard(dir2, 20000), {
      stages: [{ kind: "initial", steps: 3, seqLen: 32, batch: 2 }],
    }),
    { evaluator: pretrainEvaluator() },
  );
  const v = runPoint(res2.runDir);
  assert.equal(v.validation, true);
  assert.equal(v.loss, res2.history.at(-1)!.valLoss);
  assert.equal(v.valSeqLen, 32);
  assert.match(v.lossFrom, /valLoss at step 3, sequence length 32/);
  res2.model.dispose();
  assert.throws(() => runPoint(dir), /no config\.json \(not a herd pretrain run folder\)/);
});

function paramTotal(w: Map<string, { size: number }>): number {
  let n = 0;
  for (const t of w.values()) n += t.size;
  return n;
}

test("scaling fit CLI: ten run folders, three budgets of three and a lone run, recover the law that made them", () => {
  const dir = tempDir();
  const make = (C: number, h: number) =>
    tinyConfig(dir, join(dir, "none.tok"), {
      name: `c${C}-h${h}`,
      model: {
        preset: "tiny",
        overrides: { ...TINY, hiddenSize: h, intermediateSize: 2 * h, headDim: h / 2 },
      },
    });
  // The law puts each budget's optimum inside its runs' token range (the middle one's at width 32).
  const alpha = 0.55;
  const mid = 3e12 / trainingFlopsPerToken(modelConfig(make(3e12, 32)), 32);
  const law = { alpha, A: mid / 3e12 ** alpha };
  // A run folder as `herd pretrain` leaves it: the resolved config and two metrics records.
  const rec = (step: number, t: number, l: number, extra = {}) =>
    `${JSON.stringify({ step, stage: "initial", kind: "initial", loss: l, lr: 1e-3, gradNorm: 1, tokens: t, tokensPerSec: 1, mfu: 0.1, seqLen: 32, batch: 2, eta: 0, totalSteps: 2, ...extra })}\n`;
  const write = (cfg: ReturnType<typeof make>, name: string, metrics: string) => {
    const run = join(dir, "runs", name);
    mkdirSync(run, { recursive: true });
    writeFileSync(join(run, "config.json"), `${JSON.stringify(cfg, null, 2)}\n`);
    writeFileSync(join(run, "metrics.jsonl"), metrics);
    return run;
  };
  const runs: string[] = [];
  for (const C of [1e12, 3e12, 1e13])
    for (const h of [16, 32, 64]) {
      const cfg = make(C, h);
      const tokens = Math.round(C / trainingFlopsPerToken(modelConfig(cfg), 32));
      const loss = 2 + 0.3 * (Math.log10(tokens) - Math.log10(law.A * C ** law.alpha)) ** 2;
      // The first budget's runs have no validation loss: their training loss stands in.
      const val = C > 1e12 ? { valLoss: loss } : {};
      runs.push(write(cfg, cfg.name, rec(1, 64, 5) + rec(2, tokens, C > 1e12 ? loss + 0.5 : loss, val)));
    }
  // A lone run of another budget cannot make a parabola: it is left out, and said so.
  const lone = write(make(1e15, 32), "lone", rec(1, 64, 5) + rec(2, 1e10, 3, { valLoss: 3 }));
  const svg = join(dir, "scaling.svg");
  const r = spawnSync(process.execPath, [CLI, "scaling", "fit", ...runs, lone, "--svg", svg], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  const m = /D\*\(C\) = ([\d.e+-]+)·C\^([\d.]+)/.exec(r.stdout);
  assert.ok(m, r.stdout);
  assert.ok(Math.abs(Number(m[2]) - law.alpha) < 1e-3, `alpha ${m[2]}`);
  assert.ok(Math.abs(Number(m[1]) / law.A - 1) < 0.01, `A ${m[1]}`);
  assert.match(r.stdout, /note: 3 of 10 run\(s\) have no validation loss/);
  assert.equal(r.stdout.match(/\(valLoss at step 2\)/g)?.length, 7);
  assert.equal(r.stdout.match(/^budget .* \(3 runs\)/gm)?.length, 3);
  assert.doesNotMatch(r.stdout, /extrapolated/);
  assert.match(r.stdout, /left out: budget .*: 1 run\(s\); a parabola needs at least 3/);
  const pic = readFileSync(svg, "utf8");
  assert.equal(pic.match(/class="isoflop"/g)?.length, 3);
  assert.equal(pic.match(/class="optimum"/g)?.length, 3);
  assert.equal(pic.match(/class="powerlaw"/g)?.length, 1);
  const pred = spawnSync(process.execPath, [CLI, "scaling", "predict", "3.8e25"], { encoding: "utf8" });
  assert.match(pred.stdout, /16\.29T tokens, 388\.7B parameters \(C = 6·N·D\)/);
  assert.match(pred.stdout, /402B .* other than 6·N·D/);
});
