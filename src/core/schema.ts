// One declarative config schema for every config herd reads: pre-training and long-context settings,
// model configs, data pipeline steps and CLI options (and post-training and serving configs to come).
// A field is data, written once: its type, default, range, choices and one line of doc. From it come
// the checking of a parsed file (validate: defaults filled, errors naming the file and the field path,
// unknown fields listed), the typed value (Infer: the TypeScript type follows from the declaration),
// each command's --help lines (helpText) and its node:util parseArgs options and string conversion
// (parseCli). The wording of every problem is here, one rule for all:
//   `my-run.yaml: field 'stages[2].steps' must be an integer ≥ 1, got 0`
//   `my-run.yaml: field 'shedule' is not a known field (known: name, runsDir, …)`
//   `--max-tokens: bad value 'x' (expected an integer ≥ 0)`
// Bottom layer (src/core/): imports nothing from herd.
import { type ParseArgsConfig, parseArgs } from "node:util";

interface Base {
  /** One line (or a few, `\n`-separated) for --help and the README's tables. */
  readonly doc: string;
  /** The default as help and tables print it, where the value alone does not say it. */
  readonly defaultDoc?: string;
  /** Absent (and no default): the value is undefined rather than an error ("is missing"). */
  readonly optional?: boolean;
  /** null is allowed (and may be the default). */
  readonly nullable?: boolean;
  /** A further check of a well-typed value: the problem ("must be …") or null. */
  readonly check?: (v: never) => string | null;
  /** CLI only: the one-letter alias (`-m`). */
  readonly short?: string;
  /** CLI only: the argument's name in --help (`--model DIR`); flags (booleans) take none. */
  readonly arg?: string;
}

interface Range {
  readonly min?: number;
  readonly max?: number;
  /** min / max themselves are outside the range. */
  readonly minExclusive?: boolean;
  readonly maxExclusive?: boolean;
}

export type Field =
  | (Base & Range & { readonly type: "integer"; readonly default?: number | null })
  | (Base & Range & { readonly type: "number"; readonly default?: number | null })
  | (Base & {
      readonly type: "boolean";
      readonly default?: boolean;
      /** CLI only: takes a value (`--bos false`) rather than being a flag, so a true default can be turned off. */
      readonly valued?: boolean;
    })
  | (Base & {
      readonly type: "string";
      readonly default?: string | null;
      /** The empty string is refused. */
      readonly nonEmpty?: boolean;
      readonly choices?: readonly string[];
    })
  | (Base & { readonly type: "enum"; readonly choices: readonly string[]; readonly default?: string | null })
  | (Base & {
      /** A list of strings (on the command line: a repeatable option, or comma-separated with `comma`). */
      readonly type: "strings";
      readonly default?: readonly string[] | null;
      readonly nonEmpty?: boolean;
      readonly comma?: boolean;
    })
  | (Base &
      Range & {
        readonly type: "numbers";
        readonly integer?: boolean;
        readonly nonEmpty?: boolean;
        readonly default?: readonly number[] | null;
      })
  | (Base & {
      /** With `fields`: a nested object checked field by field; without: any JSON object. */
      readonly type: "object";
      readonly fields?: Schema;
      readonly default?: Record<string, unknown>;
    })
  | (Base & {
      /** A list of objects, each checked against `of`. */
      readonly type: "list";
      readonly of: Schema;
      readonly nonEmpty?: boolean;
      readonly default?: readonly Record<string, unknown>[];
    });

export type Schema = { readonly [name: string]: Field };

// --- the typed value ------------------------------------------------------------------------------

type ValueOf<F> = F extends { type: "integer" | "number" }
  ? number
  : F extends { type: "boolean" }
    ? boolean
    : F extends { type: "enum"; choices: readonly (infer C)[] }
      ? C
      : F extends { type: "string" }
        ? string
        : F extends { type: "strings" }
          ? string[]
          : F extends { type: "numbers" }
            ? number[]
            : F extends { type: "object"; fields: infer S extends Schema }
              ? Infer<S>
              : F extends { type: "object" }
                ? Record<string, unknown>
                : F extends { type: "list"; of: infer S extends Schema }
                  ? Infer<S>[]
                  : never;
type NullOf<F> = F extends { nullable: true } ? null : F extends { default: null } ? null : never;
type Absent<F> = F extends { default: unknown } ? never : F extends { optional: true } ? undefined : never;

/** The value validate() returns for a schema: each field's type, null where nullable, undefined where optional. */
export type Infer<S extends Schema> = {
  -readonly [K in keyof S]: ValueOf<S[K]> | NullOf<S[K]> | Absent<S[K]>;
};
/** The values parseCli() returns: an option without a default is undefined when not given. */
export type CliValues<S extends Schema> = {
  -readonly [K in keyof S]:
    | ValueOf<S[K]>
    | NullOf<S[K]>
    | (S[K] extends { default: unknown } ? never : undefined);
};

// --- words ----------------------------------------------------------------------------------------

const fmt = (v: number) => String(v);

/** What the lower bound alone allows: "an integer ≥ 1", "a positive number", "a number". */
function lowerText(noun: "integer" | "number", r: Range): string {
  const a = noun === "integer" ? "an integer" : "a number";
  if (r.min === undefined) return a;
  if (r.min === 0 && r.minExclusive) return `a positive ${noun}`;
  return `${a} ${r.minExclusive ? ">" : "≥"} ${fmt(r.min)}`;
}

/** What the whole range allows: "an integer in [1, 512]", "a number in [0, 1)", "an integer ≥ 0". */
function rangeText(noun: "integer" | "number", r: Range): string {
  if (r.max === undefined) return lowerText(noun, r);
  const a = noun === "integer" ? "an integer" : "a number";
  if (r.min === undefined) return `${a} ${r.maxExclusive ? "<" : "≤"} ${fmt(r.max)}`;
  return `${a} in ${r.minExclusive ? "(" : "["}${fmt(r.min)}, ${fmt(r.max)}${r.maxExclusive ? ")" : "]"}`;
}

/** What a field allows, in words (help text, README tables and the tail of CLI errors). */
export function allowed(f: Field): string {
  const orNull = f.nullable || f.default === null ? " or null" : "";
  switch (f.type) {
    case "integer":
    case "number":
      return rangeText(f.type, f) + orNull;
    case "boolean":
      return "true or false";
    case "enum":
      return `one of ${f.choices.join(", ")}${orNull}`;
    case "string":
      if (f.choices) return `one of ${f.choices.join(", ")}${orNull}`;
      return (f.nonEmpty ? "a non-empty string" : "a string") + orNull;
    case "strings":
      return (f.nonEmpty ? "a non-empty list of strings" : "a list of strings") + orNull;
    case "numbers":
      return `${f.nonEmpty ? "a non-empty list" : "a list"} of ${rangeText(f.integer ? "integer" : "number", f).replace(/^an? (positive )?(integer|number)/, "$1$2s")}${orNull}`;
    case "object":
      return "an object";
    case "list":
      return f.nonEmpty ? "a non-empty list of objects" : "a list of objects";
  }
}

/** A field's default as help and tables print it; undefined where it has none. */
export function defaultText(f: Field): string | undefined {
  if (f.defaultDoc !== undefined) return f.defaultDoc;
  const d = f.default;
  if (d === undefined) return undefined;
  if (d === null) return "null";
  if (Array.isArray(d))
    return d.length === 0 ? "[]" : d.every((x) => typeof x !== "object") ? d.join(", ") : JSON.stringify(d);
  if (typeof d === "object") return JSON.stringify(d);
  return String(d);
}

// --- checking -------------------------------------------------------------------------------------

/** One problem: the field's path (`stages[2].steps`) and what is wrong (`must be …, got …`). */
export interface Problem {
  path: string;
  why: string;
}

/** The problems of a file; the message names the source and each field, one problem a line. */
export class SchemaError extends Error {
  constructor(
    readonly source: string,
    readonly problems: Problem[],
  ) {
    super(problems.map((p) => problemText(source, p)).join("\n"));
  }
}

/** `source: field 'path' why` (the root itself: `source: why`). */
export function problemText(source: string, p: Problem): string {
  return p.path === "" ? `${source}: ${p.why}` : `${source}: field '${p.path}' ${p.why}`;
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const got = (v: unknown) => JSON.stringify(v) ?? String(v);
const join = (prefix: string, key: string) => (prefix ? `${prefix}.${key}` : key);

function inRange(v: number, r: Range): "low" | "high" | null {
  if (r.min !== undefined && (r.minExclusive ? v <= r.min : v < r.min)) return "low";
  if (r.max !== undefined && (r.maxExclusive ? v >= r.max : v > r.max)) return "high";
  return null;
}

/** Check one present value; returns the (copied) value, pushing problems under `path`. */
function checkValue(f: Field, v: unknown, path: string, problems: Problem[]): unknown {
  const bad = (what = allowed(f)) => {
    problems.push({ path, why: `must be ${what}, got ${got(v)}` });
    return v;
  };
  if (v === null) return f.nullable || f.default === null ? null : bad();
  let out: unknown = v;
  switch (f.type) {
    case "integer":
    case "number": {
      const ok =
        typeof v === "number" && Number.isFinite(v) && (f.type === "number" || Number.isSafeInteger(v));
      if (!ok) return bad(lowerText(f.type, f));
      const where = inRange(v, f);
      if (where === "low") return bad(lowerText(f.type, f));
      if (where === "high") return bad(f.maxExclusive ? `below ${fmt(f.max!)}` : `at most ${fmt(f.max!)}`);
      break;
    }
    case "boolean":
      if (typeof v !== "boolean") return bad();
      break;
    case "string":
    case "enum": {
      const choices = f.choices;
      if (typeof v !== "string" || (f.type === "string" && f.nonEmpty && v === "")) return bad();
      if (choices && !choices.includes(v)) return bad();
      break;
    }
    case "strings":
      if (!Array.isArray(v) || v.some((s) => typeof s !== "string") || (f.nonEmpty && v.length === 0))
        return bad();
      out = [...v];
      break;
    case "numbers":
      if (
        !Array.isArray(v) ||
        (f.nonEmpty && v.length === 0) ||
        v.some(
          (x) =>
            typeof x !== "number" ||
            !Number.isFinite(x) ||
            (f.integer && !Number.isSafeInteger(x)) ||
            inRange(x, f) !== null,
        )
      )
        return bad();
      out = [...v];
      break;
    case "object":
      if (!isObj(v)) return bad();
      out = f.fields ? checkObject(f.fields, v, path, problems) : structuredClone(v);
      break;
    case "list":
      if (!Array.isArray(v) || (f.nonEmpty && v.length === 0)) return bad();
      out = v.map((item, i) => {
        const p = `${path}[${i}]`;
        if (!isObj(item)) {
          problems.push({ path: p, why: `must be an object, got ${got(item)}` });
          return item;
        }
        return checkObject(f.of, item, p, problems);
      });
      break;
  }
  if (f.check) {
    const why = (f.check as (x: unknown) => string | null)(out);
    if (why) problems.push({ path, why });
  }
  return out;
}

/**
 * Check the fields of `raw` against `schema` (ignoring the `skip` keys), fill defaults and return the
 * value; problems are pushed to `problems` with paths under `prefix` (the collecting form: the pipeline
 * reports every problem of a file at once).
 */
export function checkObject(
  schema: Schema,
  raw: Record<string, unknown>,
  prefix: string,
  problems: Problem[],
  skip: readonly string[] = [],
): Record<string, unknown> {
  const known = Object.keys(schema);
  for (const k of Object.keys(raw))
    if (!skip.includes(k) && !(k in schema))
      problems.push({
        path: join(prefix, k),
        why: `is not a known field (known: ${known.length ? known.join(", ") : "none"})`,
      });
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(schema)) {
    const path = join(prefix, k);
    const v = raw[k];
    if (v === undefined) {
      if (f.default !== undefined)
        out[k] =
          f.type === "object" && f.fields
            ? checkObject(f.fields, structuredClone(f.default) as Record<string, unknown>, path, problems)
            : structuredClone(f.default);
      else if (f.type === "object" && f.fields) out[k] = checkObject(f.fields, {}, path, problems);
      else if (!f.optional) problems.push({ path, why: "is missing" });
      continue;
    }
    out[k] = checkValue(f, v, path, problems);
  }
  return out;
}

/**
 * Check `raw` (a parsed JSON/YAML file) against `schema`: defaults filled, the typed value returned;
 * throws a SchemaError naming `source` and every bad field (`my-run.yaml: field 'stages[2].steps' must
 * be an integer ≥ 1, got 0`).
 */
export function validate<S extends Schema>(schema: S, raw: unknown, source: string, prefix = ""): Infer<S> {
  if (!isObj(raw))
    throw new SchemaError(source, [{ path: prefix, why: `must be an object, got ${got(raw)}` }]);
  const problems: Problem[] = [];
  const out = checkObject(schema, raw, prefix, problems);
  if (problems.length > 0) throw new SchemaError(source, problems);
  return out as Infer<S>;
}

/** One field's value (`fallback` where absent), or throw naming `source` and `path` (model configs). */
export function validateField<F extends Field>(
  f: F,
  v: unknown,
  source: string,
  path: string,
): ValueOf<F> | NullOf<F> {
  const problems: Problem[] = [];
  const value = v === undefined ? f.default : v;
  if (value === undefined) throw new SchemaError(source, [{ path, why: "is missing" }]);
  const out = checkValue(f, value, path, problems);
  if (problems.length > 0) throw new SchemaError(source, problems);
  return out as ValueOf<F> | NullOf<F>;
}

// --- --help ---------------------------------------------------------------------------------------

const WIDTH = 100;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const para of text.split("\n")) {
    let line = "";
    for (const word of para.split(" ")) {
      if (line && line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    lines.push(line);
  }
  return lines;
}

/** The flag as help shows it: `--model, -m DIR`, `--f32`. */
export function flagText(name: string, f: Field): string {
  const arg = f.type === "boolean" && !f.valued ? "" : ` ${f.arg ?? argName(f)}`;
  return `--${name}${f.short ? `, -${f.short}` : ""}${arg}`;
}

function argName(f: Field): string {
  switch (f.type) {
    case "integer":
      return "N";
    case "number":
      return "X";
    case "boolean":
      return "true|false";
    case "enum":
      return f.choices.join("|");
    case "string":
      return f.choices ? f.choices.join("|") : "S";
    case "strings":
      return f.comma ? "A,B,..." : "S";
    case "numbers":
      return "N,N,...";
    default:
      return "JSON";
  }
}

/** A field's doc with its default: `new tokens at most (default 256)`; flags off by default say nothing. */
export function docWithDefault(f: Field): string {
  const d =
    f.type === "boolean" && !f.valued && f.default === false && f.defaultDoc === undefined
      ? undefined
      : defaultText(f);
  if (d === undefined) return f.doc;
  return f.defaultDoc !== undefined ? `${f.doc} (default: ${d})` : `${f.doc} (default ${d})`;
}

/**
 * --help's option lines for a CLI schema, e.g. `  --max-tokens N      new tokens at most (default 256)`:
 * flags in one column, docs wrapped beside them (a flag too long for the column puts its doc on the next
 * line).
 */
export function helpText(schema: Schema, opts: { indent?: number; column?: number } = {}): string {
  const indent = " ".repeat(opts.indent ?? 2);
  const flags = Object.entries(schema).map(([k, f]) => flagText(k, f));
  const column = opts.column ?? Math.min(Math.max(...flags.map((s) => s.length)) + 2, 22);
  const pad = " ".repeat(indent.length + column);
  const lines: string[] = [];
  Object.values(schema).forEach((f, i) => {
    const flag = flags[i]!;
    const doc = wrap(docWithDefault(f), WIDTH - pad.length);
    if (flag.length + 2 > column) lines.push(`${indent}${flag}`, ...doc.map((l) => pad + l));
    else lines.push(`${indent}${flag.padEnd(column)}${doc[0]}`, ...doc.slice(1).map((l) => pad + l));
  });
  return lines.join("\n");
}

/** A command's whole --help: its usage line(s), prose paragraphs, then `options:` from the schema. */
export function commandHelp(usage: string, schema: Schema, prose?: string): string {
  return [usage, ...(prose ? [prose] : []), `options:\n${helpText(schema)}`].join("\n\n");
}

// --- the parseArgs bridge -------------------------------------------------------------------------

/** A mistake on the command line: the command prints it (and its help) and exits 2. */
export class UsageError extends Error {}

/** The standard `-h, --help` option every command has. */
export const HELP_OPTION = {
  help: { type: "boolean", short: "h", default: false, doc: "this help" },
} as const satisfies Schema;

/** node:util parseArgs options for a CLI schema (booleans as flags, everything else as strings). */
export function parseArgsOptions(schema: Schema): NonNullable<ParseArgsConfig["options"]> {
  const out: NonNullable<ParseArgsConfig["options"]> = {};
  for (const [k, f] of Object.entries(schema))
    out[k] = {
      type: f.type === "boolean" && !f.valued ? "boolean" : "string",
      ...(f.short ? { short: f.short } : {}),
      ...(f.type === "strings" && !f.comma ? { multiple: true } : {}),
    };
  return out;
}

/** Convert one command-line string to a field's type (no range checks; see fromText). */
export function parseText(f: Field, text: string): unknown {
  switch (f.type) {
    case "integer":
    case "number":
      return text.trim() === "" ? Number.NaN : Number(text);
    case "boolean":
      return text === "true" || text === "1" || text === ""
        ? true
        : text === "false" || text === "0"
          ? false
          : text;
    case "strings":
      return text === "" ? [] : text.split(",");
    case "numbers":
      return text === "" ? [] : text.split(",").map((s) => (s.trim() === "" ? Number.NaN : Number(s)));
    case "object":
    case "list":
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
    default:
      return text;
  }
}

/** `--name`'s string value converted and checked, or a UsageError `--name: bad value 'v' (expected …)`. */
export function fromText(name: string, f: Field, text: string): unknown {
  const problems: Problem[] = [];
  const v = checkValue(f, parseText(f, text), name, problems);
  if (problems.length > 0) throw new UsageError(`--${name}: bad value '${text}' (expected ${allowed(f)})`);
  return v;
}

/**
 * Parse `argv` with the options a CLI schema declares: each value converted and checked (UsageError on a
 * bad one, an unknown option or a stray positional), defaults filled; options without a default that were
 * not given are undefined.
 */
export function parseCli<S extends Schema>(
  schema: S,
  argv: string[],
  opts: { positionals?: boolean } = {},
): { values: CliValues<S>; positionals: string[] } {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: parseArgsOptions(schema),
      allowPositionals: opts.positionals ?? false,
      strict: true,
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const values: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(schema)) {
    const v = parsed.values[k];
    if (v === undefined) values[k] = f.default === undefined ? undefined : structuredClone(f.default);
    else if (typeof v === "boolean") values[k] = v;
    else if (Array.isArray(v)) values[k] = v.map(String);
    else values[k] = fromText(k, f, v);
  }
  return { values: values as CliValues<S>, positionals: parsed.positionals };
}

// --- README tables --------------------------------------------------------------------------------

/** A markdown table of a config schema's fields (nested ones dotted, list items as `stages[].steps`). */
export function configTable(schema: Schema): string {
  const rows: string[] = [];
  const walk = (s: Schema, prefix: string) => {
    for (const [k, f] of Object.entries(s)) {
      const path = prefix ? `${prefix}.${k}` : k;
      if (f.type === "object" && f.fields) walk(f.fields, path);
      else if (f.type === "list") {
        rows.push(`| \`${path}\` | ${allowed(f)} | ${cell(f)} | ${f.doc} |`);
        walk(f.of, `${path}[]`);
      } else rows.push(`| \`${path}\` | ${allowed(f)} | ${cell(f)} | ${f.doc.replace(/\n/g, " ")} |`);
    }
  };
  const cell = (f: Field) => {
    const d = defaultText(f);
    if (d === undefined) return f.optional ? "unset" : "required";
    return f.defaultDoc !== undefined ? d : `\`${d}\``;
  };
  walk(schema, "");
  return ["| field | allowed | default | meaning |", "|---|---|---|---|", ...rows].join("\n");
}

/** `text` with what lies between `<!-- name:begin -->` and `<!-- name:end -->` replaced by `body`. */
export function withGenerated(text: string, name: string, body: string): string {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`README: no ${begin} … ${end} markers`);
  return `${text.slice(0, a + begin.length)}\n${body}\n${text.slice(b)}`;
}
