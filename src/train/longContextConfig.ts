// The `longContext` field of a pre-training config: the settings of the checks that end a long-context
// stage (spec §6.2), declared once (type, default, range, doc) as a src/core/schema.ts schema that
// validates them (errors name the field) and gives their type and defaults. Train owns the field
// because it is part of the run's config.json; the checks themselves are eval's (src/eval/longContext.ts),
// run through the trainer's evaluator hook (evaluator.ts).
import { type Infer, type Schema, validate } from "../core/schema.js";

export const LONG_CONTEXT_SCHEMA = {
  require: {
    type: "boolean",
    default: false,
    doc: "stop the run when a check fails (false: warn and go on)",
  },
  tolerance: {
    type: "number",
    default: 0.02,
    min: 0,
    doc: "short-context loss counts as recovered within this relative margin of its initial-stage value",
  },
  niahThreshold: {
    type: "number",
    default: 1,
    min: 0,
    max: 1,
    doc: "share of exact needle retrievals needed (1 = all)",
  },
  depths: {
    type: "numbers",
    default: [0, 0.25, 0.5, 0.75, 1],
    min: 0,
    max: 1,
    nonEmpty: true,
    doc: "needle depths in [0, 1]",
  },
  lengths: {
    type: "numbers",
    integer: true,
    min: 8,
    nonEmpty: true,
    nullable: true,
    default: null,
    defaultDoc: "null: doubling from the initial length to the stage's",
    doc: "context lengths to test (each ≤ the stage's)",
  },
  trials: { type: "integer", default: 2, min: 1, doc: "needles per cell" },
  tokenizer: {
    type: "string",
    nonEmpty: true,
    nullable: true,
    default: null,
    defaultDoc: "null: a token passkey",
    doc: '"bytes" (ids are UTF-8 bytes) or a tokenizer.model path (a text needle)',
  },
} as const satisfies Schema;

export type LongContextConfig = Infer<typeof LONG_CONTEXT_SCHEMA>;

export const DEFAULT_LONG_CONTEXT: LongContextConfig = validate(LONG_CONTEXT_SCHEMA, {}, "defaults");

/** Resolve the `longContext` field (already checked against LONG_CONTEXT_SCHEMA); a tokenizer path resolves with `abs`. */
export function resolveLongContextConfig(
  c: LongContextConfig,
  abs: (p: string) => string,
): LongContextConfig {
  const tokenizer = c.tokenizer === null || c.tokenizer === "bytes" ? c.tokenizer : abs(c.tokenizer);
  return { ...c, tokenizer };
}
