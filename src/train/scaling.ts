// Scaling laws (spec §6.4): for each compute budget C, fit validation loss against log training tokens
// with a second-degree polynomial and take its minimum (the compute-optimal token count D*); then fit
// the power law D*(C) = A·C^α by least squares in log space. The optimal model size follows from
// C = 6·N·D. The paper's figure constants are (α, A) = (0.537, 0.299): at 3.8e25 FLOPs they give
// 16.29T tokens and, with C = 6·N·D, 388.7B parameters; the paper prints 402B on 16.55T, a pair whose
// 6·N·D is 4.0e25, so its pairing used another FLOP formula (spec §6.4 [CALC]). `predict` takes the
// FLOPs per parameter and token (6) as a parameter.
export interface ScalingPoint {
  /** Training FLOPs of the run (the budget it belongs to). */
  flops: number;
  tokens: number;
  loss: number;
}

export interface PowerLaw {
  alpha: number;
  A: number;
}

export const PAPER_LAW: PowerLaw = { alpha: 0.537, A: 0.299 };

/** Least-squares polynomial of degree 2: y ≈ c0 + c1·x + c2·x². */
export function fitQuadratic(xs: number[], ys: number[]): [number, number, number] {
  if (xs.length < 3) throw new Error(`fitQuadratic: ${xs.length} point(s); need at least 3`);
  const s = [0, 0, 0, 0, 0];
  const t = [0, 0, 0];
  xs.forEach((x, i) => {
    for (let k = 0; k < 5; k++) s[k]! += x ** k;
    for (let k = 0; k < 3; k++) t[k]! += ys[i]! * x ** k;
  });
  // Normal equations, solved by Cramer's rule (3×3).
  const m = [
    [s[0]!, s[1]!, s[2]!],
    [s[1]!, s[2]!, s[3]!],
    [s[2]!, s[3]!, s[4]!],
  ];
  const det = (a: number[][]) =>
    a[0]![0]! * (a[1]![1]! * a[2]![2]! - a[1]![2]! * a[2]![1]!) -
    a[0]![1]! * (a[1]![0]! * a[2]![2]! - a[1]![2]! * a[2]![0]!) +
    a[0]![2]! * (a[1]![0]! * a[2]![1]! - a[1]![1]! * a[2]![0]!);
  const d = det(m);
  if (Math.abs(d) < 1e-300) throw new Error("fitQuadratic: points do not determine a parabola");
  const col = (j: number) => m.map((row, i) => row.map((v, k) => (k === j ? t[i]! : v)));
  return [det(col(0)) / d, det(col(1)) / d, det(col(2)) / d];
}

/** The parabola of one budget: loss ≈ c0 + c1·x + c2·x² over x = log10(tokens), and its minimum. */
export interface IsoFlop {
  /** The budget: the geometric mean of its runs' FLOPs. */
  flops: number;
  points: ScalingPoint[];
  coef: [number, number, number];
  /** Compute-optimal tokens D*: the parabola's minimum. */
  tokens: number;
  /** The parabola's loss at D*. */
  loss: number;
}

/** Fit the parabola of one budget's runs; errors when it opens downward (no minimum). */
export function isoFlop(points: ScalingPoint[]): IsoFlop {
  const flops = 10 ** (points.reduce((a, p) => a + Math.log10(p.flops), 0) / points.length);
  if (points.length < 3)
    throw new Error(`budget ${flops.toExponential(2)}: ${points.length} run(s); a parabola needs at least 3`);
  const coef = fitQuadratic(
    points.map((p) => Math.log10(p.tokens)),
    points.map((p) => p.loss),
  );
  const [a, b, c] = coef;
  if (!(c > 0))
    throw new Error(
      `budget ${flops.toExponential(2)}: the loss over log tokens opens downward (no minimum); ` +
        "add runs on both sides of the optimum",
    );
  const x = -b / (2 * c);
  return { flops, points, coef, tokens: 10 ** x, loss: a + b * x + c * x * x };
}

/**
 * Group points into budgets: sorted by FLOPs, a point more than `tolerance` (relative) above the first
 * of the current group starts a new one — real runs of one budget differ by their step rounding.
 */
export function groupBudgets(points: ScalingPoint[], tolerance = 0.05): ScalingPoint[][] {
  const groups: ScalingPoint[][] = [];
  for (const p of [...points].sort((a, b) => a.flops - b.flops)) {
    const g = groups.at(-1);
    if (g && p.flops <= g[0]!.flops * (1 + tolerance)) g.push(p);
    else groups.push([p]);
  }
  return groups;
}

/**
 * Group points by budget (`groupBudgets`), find each D*, fit D* = A·C^α by least squares in log space.
 * A budget whose parabola cannot be fitted (under 3 points, or opening downward: noisy real runs) is
 * left out and listed in `skipped` with the reason; at least 2 budgets must remain.
 */
export function fitScalingLaw(
  points: ScalingPoint[],
  tolerance = 0.05,
): {
  law: PowerLaw;
  optima: IsoFlop[];
  skipped: { flops: number; reason: string }[];
} {
  const optima: IsoFlop[] = [];
  const skipped: { flops: number; reason: string }[] = [];
  for (const g of groupBudgets(points, tolerance)) {
    try {
      optima.push(isoFlop(g));
    } catch (e) {
      skipped.push({ flops: g[0]!.flops, reason: (e as Error).message });
    }
  }
  if (optima.length < 2)
    throw new Error(
      `fitScalingLaw: ${optima.length} budget(s) with a minimum; need at least 2` +
        skipped.map((k) => `\n  ${k.reason}`).join(""),
    );
  const xs = optima.map((o) => Math.log10(o.flops));
  const ys = optima.map((o) => Math.log10(o.tokens));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let sxy = 0;
  let sxx = 0;
  xs.forEach((x, i) => {
    sxy += (x - mx) * (ys[i]! - my);
    sxx += (x - mx) ** 2;
  });
  const alpha = sxy / sxx;
  return { law: { alpha, A: 10 ** (my - alpha * mx) }, optima, skipped };
}

/** Optimal tokens D = A·C^α and parameters N = C / (k·D) (C = k·N·D, k = 6 by default) for `flops`. */
export function predict(
  flops: number,
  law: PowerLaw = PAPER_LAW,
  flopsPerParamToken = 6,
): { tokens: number; params: number } {
  if (!(flops > 0)) throw new Error(`predict: FLOPs ${flops} must be positive`);
  if (!(flopsPerParamToken > 0)) throw new Error(`predict: FLOPs per parameter and token must be positive`);
  const tokens = law.A * flops ** law.alpha;
  return { tokens, params: flops / (flopsPerParamToken * tokens) };
}
