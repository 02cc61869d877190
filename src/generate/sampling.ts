// Choosing the next token from logits (spec §2.9): greedy (temperature 0: argmax), or sampling from
// softmax(logits / temperature) restricted by top-k (the k most likely) and then top-p by the reference
// rule — sort descending, cumulative sum, drop every token whose cumulative mass *before* it already
// exceeds p, renormalise, draw. A seeded generator (src/core/rng.ts) makes a run reproducible.
import { uniform } from "../core/rng.js";

/**
 * The sampling defaults, written once: the Llama 3 reference's (temperature 0.6, top-p 0.9), for the
 * library (Sampler, generate, ChatSession) and the CLI (src/cli/modelArgs.ts) alike. Pass temperature 0
 * for greedy decoding.
 */
export const SAMPLING_DEFAULTS = { temperature: 0.6, topP: 0.9, topK: 0, seed: 0 } as const;

export interface SamplingOptions {
  /** 0 is greedy; default SAMPLING_DEFAULTS.temperature (0.6, the Llama 3 reference). */
  temperature?: number;
  /** Nucleus mass in (0, 1]; 1 keeps everything. Default SAMPLING_DEFAULTS.topP (0.9). */
  topP?: number;
  /** Keep only the k most likely tokens; 0 (default) keeps all. */
  topK?: number;
  /** Seed of the random draws (default 0). */
  seed?: number;
}

/** Deterministic uniform numbers in [0, 1) from `seed` (src/core/rng.ts's generator). */
export function seededRandom(seed: number): () => number {
  return uniform(seed);
}

/** Index of the largest logit (the first one on ties). */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/** Probability floors (relative to the most likely token) tried before sorting every token. */
const CANDIDATE_THRESHOLDS = [1e-3, 1e-6, 1e-12];

/**
 * The distribution sampling draws from, as (token, probability) pairs in descending probability,
 * after temperature, top-k and the reference top-p rule, renormalised to sum to 1.
 */
export function samplingDistribution(
  logits: ArrayLike<number>,
  opts: { temperature: number; topP?: number; topK?: number },
): { ids: Int32Array; probs: Float64Array } {
  const { temperature } = opts;
  const topP = opts.topP ?? 1;
  const topK = opts.topK ?? 0;
  if (!(temperature > 0)) throw new Error(`sampling: temperature ${temperature} must be > 0 (0 is greedy)`);
  if (!(topP > 0 && topP <= 1)) throw new Error(`sampling: topP ${topP} must be in (0, 1]`);
  if (!(Number.isInteger(topK) && topK >= 0))
    throw new Error(`sampling: topK ${topK} must be an integer ≥ 0`);
  const V = logits.length;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < V; i++) if (logits[i]! > max) max = logits[i]!;
  const p = new Float64Array(V);
  let total = 0;
  for (let i = 0; i < V; i++) total += p[i] = Math.exp((logits[i]! - max) / temperature);
  const byProbability = (a: number, b: number) => p[b]! - p[a]! || a - b;
  // Sorting all 128K tokens costs more than a decode step, so only the candidates with p ≥ t (p is
  // relative to the largest, which is 1) are sorted when the kept set provably lies inside them: the k
  // most likely when top-k is set and at least k are candidates; else, without top-k, the top-p prefix
  // when the candidates' mass already exceeds p (every other token then has more than p before it).
  let order: Int32Array | null = null;
  let keep = 0;
  let kept = 0; // mass of the top-k tokens: top-p looks at cumulative mass after top-k renormalised
  for (const t of CANDIDATE_THRESHOLDS) {
    let count = 0;
    let mass = 0;
    for (let i = 0; i < V; i++)
      if (p[i]! >= t) {
        count++;
        mass += p[i]!;
      }
    const byTopK = topK > 0 && topK <= count;
    if (!byTopK && !(topK === 0 && mass > topP * total)) continue;
    order = new Int32Array(count);
    for (let i = 0, c = 0; i < V; i++) if (p[i]! >= t) order[c++] = i;
    order.sort(byProbability);
    keep = byTopK ? topK : count;
    if (byTopK) for (let r = 0; r < keep; r++) kept += p[order[r]!]!;
    else kept = total;
    break;
  }
  if (!order) {
    order = Int32Array.from({ length: V }, (_, i) => i).sort(byProbability);
    keep = topK > 0 ? Math.min(topK, V) : V;
    for (let r = 0; r < keep; r++) kept += p[order[r]!]!;
  }
  let cum = 0;
  for (let r = 0; r < keep; r++) {
    // Reference rule: drop the token if the mass before it already exceeds p.
    if (cum / kept > topP) {
      keep = r;
      break;
    }
    cum += p[order[r]!]!;
  }
  const ids = order.slice(0, keep);
  const probs = new Float64Array(keep);
  let z = 0;
  for (let r = 0; r < keep; r++) z += p[ids[r]!]!;
  for (let r = 0; r < keep; r++) probs[r] = p[ids[r]!]! / z;
  return { ids, probs };
}

/** Picks tokens from logits with fixed options and its own seeded generator. */
export class Sampler {
  readonly temperature: number;
  readonly topP: number;
  readonly topK: number;
  private readonly random: () => number;

  constructor(opts: SamplingOptions = {}) {
    this.temperature = opts.temperature ?? SAMPLING_DEFAULTS.temperature;
    this.topP = opts.topP ?? SAMPLING_DEFAULTS.topP;
    this.topK = opts.topK ?? SAMPLING_DEFAULTS.topK;
    if (!(this.temperature >= 0)) throw new Error(`sampling: temperature ${this.temperature} must be ≥ 0`);
    this.random = seededRandom(opts.seed ?? SAMPLING_DEFAULTS.seed);
  }

  get greedy(): boolean {
    return this.temperature === 0;
  }

  /** The next token id for one row of logits. */
  sample(logits: ArrayLike<number>): number {
    if (this.greedy) return argmax(logits);
    const { ids, probs } = samplingDistribution(logits, this);
    const u = this.random();
    let cum = 0;
    for (let r = 0; r < ids.length; r++) {
      cum += probs[r]!;
      if (u < cum) return ids[r]!;
    }
    return ids[ids.length - 1]!;
  }
}
