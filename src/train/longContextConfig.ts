// The `longContext` field of a pre-training config: the settings of the checks that end a long-context
// stage (spec §6.2), their defaults and their validation (errors name the field). Train owns the field
// because it is part of the run's config.json; the checks themselves are eval's (src/eval/longContext.ts),
// run through the trainer's evaluator hook (evaluator.ts).

export interface LongContextConfig {
  /** Stop the run when a check fails (default false: warn and go on). */
  require: boolean;
  /** Short-context loss counts as recovered within this relative margin of its initial-stage value. */
  tolerance: number;
  /** Share of exact retrievals needed (1 = all). */
  niahThreshold: number;
  /** Needle depths in [0, 1]. */
  depths: number[];
  /** Context lengths to test (each ≤ the stage's); null: doubling from the initial length to the stage's. */
  lengths: number[] | null;
  /** Needles per cell. */
  trials: number;
  /** "bytes" (ids are UTF-8 bytes), a tokenizer.model path (text needle), or null (token passkey). */
  tokenizer: string | null;
}

export const DEFAULT_LONG_CONTEXT: LongContextConfig = {
  require: false,
  tolerance: 0.02,
  niahThreshold: 1,
  depths: [0, 0.25, 0.5, 0.75, 1],
  lengths: null,
  trials: 2,
  tokenizer: null,
};

/** Resolve the `longContext` field; a tokenizer path resolves with `abs`. */
export function resolveLongContextConfig(
  raw: unknown,
  file: string,
  abs: (p: string) => string,
): LongContextConfig {
  if (raw === undefined) return { ...DEFAULT_LONG_CONTEXT };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new Error(`${file}: field 'longContext' must be an object`);
  const o = raw as Record<string, unknown>;
  const fail = (k: string, why: string) => new Error(`${file}: field 'longContext.${k}' ${why}`);
  for (const k of Object.keys(o))
    if (!(k in DEFAULT_LONG_CONTEXT))
      throw fail(k, `is not a known field (known: ${Object.keys(DEFAULT_LONG_CONTEXT).join(", ")})`);
  const c = { ...DEFAULT_LONG_CONTEXT, ...o } as LongContextConfig;
  if (typeof c.require !== "boolean") throw fail("require", "must be true or false");
  if (!(typeof c.tolerance === "number" && c.tolerance >= 0)) throw fail("tolerance", "must be a number ≥ 0");
  if (!(typeof c.niahThreshold === "number" && c.niahThreshold >= 0 && c.niahThreshold <= 1))
    throw fail("niahThreshold", "must be in [0, 1]");
  if (
    !(
      Array.isArray(c.depths) &&
      c.depths.length > 0 &&
      c.depths.every((d) => typeof d === "number" && d >= 0 && d <= 1)
    )
  )
    throw fail("depths", "must be a non-empty list of numbers in [0, 1]");
  if (
    c.lengths !== null &&
    !(
      Array.isArray(c.lengths) &&
      c.lengths.length > 0 &&
      c.lengths.every((l) => Number.isInteger(l) && l >= 8)
    )
  )
    throw fail("lengths", "must be null or a non-empty list of integers ≥ 8");
  if (!(Number.isInteger(c.trials) && c.trials >= 1)) throw fail("trials", "must be an integer ≥ 1");
  if (c.tokenizer !== null && !(typeof c.tokenizer === "string" && c.tokenizer !== ""))
    throw fail("tokenizer", 'must be "bytes", a tokenizer.model path or null');
  const tokenizer = c.tokenizer === null || c.tokenizer === "bytes" ? c.tokenizer : abs(c.tokenizer);
  return { ...c, depths: [...c.depths], lengths: c.lengths ? [...c.lengths] : null, tokenizer };
}
