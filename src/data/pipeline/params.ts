// Checking values against a parameter table: every error names the field (e.g. "steps[2].bands: expected
// an integer ≥ 1, got 0") and unknown fields are errors that list the known ones. Defaults are filled in.
import type { ParamSpec, Params } from "./types.js";

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid pipeline:\n  ${problems.join("\n  ")}`);
  }
}

function describe(spec: ParamSpec): string {
  const range =
    spec.min !== undefined || spec.max !== undefined ? ` in [${spec.min ?? "-∞"}, ${spec.max ?? "∞"}]` : "";
  switch (spec.type) {
    case "number":
      return `a number${range}`;
    case "integer":
      return `an integer${range}`;
    case "boolean":
      return "true or false";
    case "strings":
      return "a list of strings";
    case "object":
      return "an object";
    case "string":
      return spec.choices ? `one of ${spec.choices.join(", ")}` : "a string";
  }
}

/** One value; returns an error message or null. */
export function checkValue(spec: ParamSpec, v: unknown): string | null {
  const bad = () => `expected ${describe(spec)}, got ${JSON.stringify(v)}`;
  switch (spec.type) {
    case "number":
    case "integer":
      if (typeof v !== "number" || !Number.isFinite(v)) return bad();
      if (spec.type === "integer" && !Number.isInteger(v)) return bad();
      if ((spec.min !== undefined && v < spec.min) || (spec.max !== undefined && v > spec.max)) return bad();
      return null;
    case "boolean":
      return typeof v === "boolean" ? null : bad();
    case "string":
      if (typeof v !== "string") return bad();
      return spec.choices && !spec.choices.includes(v) ? bad() : null;
    case "strings":
      return Array.isArray(v) && v.every((x) => typeof x === "string") ? null : bad();
    case "object":
      return v !== null && typeof v === "object" && !Array.isArray(v) ? null : bad();
  }
}

/** Checks `raw` against `specs` (ignoring `skip` keys), fills defaults; problems go to `problems`. */
export function checkParams(
  where: string,
  raw: Record<string, unknown>,
  specs: Record<string, ParamSpec>,
  problems: string[],
  skip: readonly string[] = [],
): Params {
  const out: Params = {};
  for (const k of Object.keys(raw)) {
    if (skip.includes(k)) continue;
    if (!(k in specs)) {
      const known = Object.keys(specs);
      problems.push(`${where}.${k}: unknown field (known: ${known.length ? known.join(", ") : "none"})`);
    }
  }
  for (const [k, spec] of Object.entries(specs)) {
    const v = k in raw ? raw[k] : structuredClone(spec.default);
    const err = checkValue(spec, v);
    if (err) problems.push(`${where}.${k}: ${err}`);
    out[k] = v;
  }
  return out;
}

/** Parses a command-line string into a parameter's type. */
export function parseParamText(spec: ParamSpec, text: string): unknown {
  switch (spec.type) {
    case "number":
    case "integer":
      return Number(text);
    case "boolean":
      return text === "true" || text === "1" || text === "";
    case "strings":
      return text === "" ? [] : text.split(",");
    case "object":
      return JSON.parse(text);
    case "string":
      return text;
  }
}
