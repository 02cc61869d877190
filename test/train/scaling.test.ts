// Scaling laws: the paper's figure constants give 3.8e25 FLOPs → 16.29T tokens and, with C = 6ND,
// 388.7B parameters (spec §6.4 [CALC] explains the gap to the paper's 16.55T / 402B); a fit over
// synthetic IsoFLOP sweeps generated from a known law recovers that law.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fitQuadratic, fitScalingLaw, predict, type ScalingPoint } from "../../src/train/scaling.js";

test("predict: 3.8e25 FLOPs → 16.29T tokens, 388.7B parameters with the figure constants and C = 6ND", () => {
  // The paper prints 402B on 16.55T; its pairing is not 6·N·D (spec §6.4 [CALC]).
  const { tokens, params } = predict(3.8e25);
  assert.equal((tokens / 1e12).toFixed(2), "16.29");
  assert.equal((params / 1e9).toFixed(1), "388.7");
  assert.ok(Math.abs(predict(3.8e25, undefined, 5.8).params / 402e9 - 1) < 0.002);
});

test("fit: IsoFLOP parabolas and the power law recover the law that made them", () => {
  assert.deepEqual(
    fitQuadratic([0, 1, 2, 3], [1, 2, 5, 10]).map((v) => Math.round(v * 1e9) / 1e9),
    [1, 0, 1],
  );
  const law = { alpha: 0.5, A: 2 };
  const points: ScalingPoint[] = [];
  for (const flops of [1e18, 1e19, 1e20, 1e21]) {
    const best = Math.log10(law.A * flops ** law.alpha);
    for (let d = -1; d <= 1; d += 0.25) {
      const x = best + d;
      points.push({ flops, tokens: 10 ** x, loss: 3 - 0.1 * Math.log10(flops) + 0.4 * d * d });
    }
  }
  const fit = fitScalingLaw(points);
  assert.ok(Math.abs(fit.law.alpha - 0.5) < 1e-6, `alpha ${fit.law.alpha}`);
  assert.ok(Math.abs(fit.law.A / 2 - 1) < 1e-5, `A ${fit.law.A}`);
  assert.throws(() => fitScalingLaw(points.slice(0, 9)), /need at least 2/);
  // A budget whose losses bend the wrong way (noisy runs) is left out, the others still give the law.
  const concave = [1, 2, 3].map((d) => ({
    flops: 1e23,
    tokens: 10 ** (10 + d),
    loss: 2 - 0.1 * (d - 2) ** 2,
  }));
  const withBad = fitScalingLaw([...points, ...concave]);
  assert.deepEqual(
    withBad.skipped.map((k) => k.flops),
    [1e23],
  );
  assert.match(withBad.skipped[0]!.reason, /opens downward/);
  assert.ok(Math.abs(withBad.law.alpha - 0.5) < 1e-6);
});
