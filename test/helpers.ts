// Shared test helpers: where the repository is (tests run from dist/test/), and numeric comparisons.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { MatmulArgs } from "../src/backends/backend.js";
import { packageRoot } from "../src/core/paths.js";
import { uniform } from "../src/core/rng.js";

/** Absolute path of the repository root (src/core/paths.ts's walk). */
export const repoRoot = packageRoot();

/** Path inside the repository, e.g. repoPath("test", "fixtures", "x.json"). */
export function repoPath(...parts: string[]): string {
  return join(repoRoot, ...parts);
}

/** Path inside ../shared if it exists beside the repository (optional inputs only), else null. */
export function sharedPath(...parts: string[]): string | null {
  const p = join(repoRoot, "..", "shared", ...parts);
  return existsSync(p) ? p : null;
}

/** Largest |a-b| / max(|b|, floor) over all elements; throws on length mismatch. */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-6): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!) / Math.max(Math.abs(b[i]!), floor);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(worst, d);
  }
  return worst;
}

/** Largest |a-b| / (atol + rtol*|b|): ≤ 1 means every element is within tolerance. */
export function closeness(a: ArrayLike<number>, b: ArrayLike<number>, rtol: number, atol: number): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!) / (atol + rtol * Math.abs(b[i]!));
    if (Number.isNaN(d)) return Number.POSITIVE_INFINITY;
    if (d > worst) worst = d;
  }
  return worst;
}

/** Deterministic pseudo-random numbers in [0, 1) (src/core/rng.ts's generator) so failures reproduce. */
export function rng(seed: number): () => number {
  return uniform(seed);
}

/** Float32Array of n uniform values in [-scale, scale). */
export function randArray(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

/** MatmulArgs for one m×k · k×n product (no batch, no transposes, no strides), with `over` applied. */
export function matmulArgs(m: number, n: number, k: number, over: Partial<MatmulArgs> = {}): MatmulArgs {
  return {
    batch: 1,
    m,
    n,
    k,
    transA: false,
    transB: false,
    strideA: 0,
    strideB: 0,
    strideC: 0,
    accumulate: false,
    ...over,
  };
}
