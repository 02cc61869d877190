// Scaling laws (spec §6.4): for each compute budget C, fit validation loss against log training tokens
// with a second-degree polynomial and take its minimum (the compute-optimal token count D*); then fit
// the power law D*(C) = A·C^α by least squares in log space. The optimal model size follows from
// C = 6·N·D. The paper's figure constants are (α, A) = (0.537, 0.299).
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
  if (xs.length < 3) throw new Error(`fitQuadratic: ${xs.length} points; need at least 3`);
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

/** Compute-optimal tokens of one budget: the minimum of the parabola of loss over log10(tokens). */
export function optimalTokens(points: ScalingPoint[]): number {
  const [, b, c] = fitQuadratic(
    points.map((p) => Math.log10(p.tokens)),
    points.map((p) => p.loss),
  );
  if (!(c > 0)) throw new Error(`budget ${points[0]?.flops}: the loss curve has no minimum (opens downward)`);
  return 10 ** (-b / (2 * c));
}

/** Group points by budget (equal to 3 significant digits), find each D*, fit D* = A·C^α. */
export function fitScalingLaw(points: ScalingPoint[]): {
  law: PowerLaw;
  optima: { flops: number; tokens: number }[];
} {
  const groups = new Map<string, ScalingPoint[]>();
  for (const p of points) {
    const key = p.flops.toPrecision(3);
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  const optima = [...groups.values()].map((g) => ({ flops: g[0]!.flops, tokens: optimalTokens(g) }));
  if (optima.length < 2) throw new Error(`fitScalingLaw: ${optima.length} budget(s); need at least 2`);
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
  return { law: { alpha, A: 10 ** (my - alpha * mx) }, optima };
}

/** Optimal tokens D = A·C^α and parameters N = C / (6·D) for a budget of `flops`. */
export function predict(flops: number, law: PowerLaw = PAPER_LAW): { tokens: number; params: number } {
  if (!(flops > 0)) throw new Error(`predict: FLOPs ${flops} must be positive`);
  const tokens = law.A * flops ** law.alpha;
  return { tokens, params: flops / (6 * tokens) };
}
