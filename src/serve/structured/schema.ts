// JSON Schema → the node graph the JSON automaton (automaton.ts) walks. Supported: type (one or a list),
// object (properties, required, additionalProperties — false by default when `properties` is given, as in
// OpenAI's strict mode), array (items, minItems, maxItems), string, number, integer, boolean, null, enum,
// const, anyOf/oneOf whose options begin with different characters (string|null, number|object …), and
// local $ref into $defs/definitions (recursion included). Keywords that would make a valid-looking output
// fail validation (pattern, minLength, minimum, …) are refused with a SchemaError naming the path, so the
// promise "the output always validates" holds; pure annotations (title, description, format …) are ignored.
const enc = new TextEncoder();

export type Node =
  | { kind: "any" }
  | ObjectNode
  | { kind: "array"; items: Node; min: number; max: number }
  | { kind: "string" }
  | { kind: "number"; integer: boolean }
  /** One of these exact byte strings (enum, const, true/false/null). */
  | { kind: "literal"; options: Uint8Array[] }
  /** Options with disjoint first bytes. */
  | { kind: "union"; options: Node[] }
  /** One of `prefixes` verbatim, then the value `next[i]` of the prefix matched (tool calls). */
  | { kind: "branch"; prefixes: Uint8Array[]; next: Node[] }
  /** These values one after another, nothing between them. */
  | { kind: "seq"; parts: Node[] };

export interface ObjectNode {
  kind: "object";
  /** Declared properties: the name, its JSON-escaped bytes (without quotes), its schema. */
  props: { name: string; key: Uint8Array; node: Node }[];
  /** Indices into props that must appear. */
  required: number[];
  /** Schema of other members, or null when none may appear. */
  additional: Node | null;
}

/** A schema herd cannot enforce; `path` is a JSON pointer-ish path ("#.properties.a"), `reason` the why. */
export class SchemaError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`schema at ${path}: ${reason}`);
  }
}

export const ANY: Node = { kind: "any" };
/** Any JSON object (json_object mode). */
export const ANY_OBJECT: ObjectNode = { kind: "object", props: [], required: [], additional: ANY };
export const ANY_ARRAY: Node = { kind: "array", items: ANY, min: 0, max: Number.POSITIVE_INFINITY };

export const literal = (...texts: string[]): Node => ({
  kind: "literal",
  options: texts.map((t) => enc.encode(t)),
});

const ANNOTATIONS = new Set([
  "title",
  "description",
  "$schema",
  "$id",
  "$comment",
  "default",
  "examples",
  "format",
  "deprecated",
  "readOnly",
  "writeOnly",
  "$defs",
  "definitions",
  "strict",
]);
const HANDLED = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "minItems",
  "maxItems",
  "enum",
  "const",
  "anyOf",
  "oneOf",
  "$ref",
]);

type Schema = Record<string, unknown>;

/** Compiles a JSON Schema (an object, or true for anything). */
export function compileSchema(schema: unknown): Node {
  const refs = new Map<string, Node>();
  const root = schema;
  const compile = (s: unknown, path: string): Node => {
    if (s === true) return ANY;
    if (typeof s !== "object" || s === null || Array.isArray(s))
      throw new SchemaError(path, "a schema must be an object or true");
    const o = s as Schema;
    for (const k of Object.keys(o))
      if (!HANDLED.has(k) && !ANNOTATIONS.has(k))
        throw new SchemaError(path, `keyword '${k}' is not supported`);
    if (typeof o.$ref === "string") return ref(o.$ref, path);
    if (o.const !== undefined) return literal(JSON.stringify(o.const));
    if (o.enum !== undefined) {
      if (!Array.isArray(o.enum) || o.enum.length === 0)
        throw new SchemaError(`${path}.enum`, "must be a non-empty list");
      const types = typeList(o.type, path);
      const vals = o.enum.filter((v) => !types || types.some((t) => isType(v, t)));
      if (vals.length === 0) throw new SchemaError(`${path}.enum`, "no value has the schema's type");
      return literal(...new Set(vals.map((v) => JSON.stringify(v))));
    }
    const alts = o.anyOf ?? o.oneOf;
    if (alts !== undefined) {
      const key = o.anyOf !== undefined ? "anyOf" : "oneOf";
      if (!Array.isArray(alts) || alts.length === 0)
        throw new SchemaError(`${path}.${key}`, "must be a non-empty list");
      return union(
        alts.map((a, i) => compile(a, `${path}.${key}[${i}]`)),
        `${path}.${key}`,
      );
    }
    const types = typeList(o.type, path);
    if (!types) return o.properties !== undefined ? objectNode(o, path) : ANY;
    return union(
      types.map((t) => typed(t, o, path)),
      `${path}.type`,
    );
  };
  const typed = (t: string, o: Schema, path: string): Node => {
    switch (t) {
      case "object":
        return o.properties === undefined && o.additionalProperties === undefined
          ? ANY_OBJECT
          : objectNode(o, path);
      case "array": {
        const min = count(o.minItems, `${path}.minItems`, 0);
        const max = count(o.maxItems, `${path}.maxItems`, Number.POSITIVE_INFINITY);
        if (min > max) throw new SchemaError(path, "minItems exceeds maxItems");
        return {
          kind: "array",
          items: o.items === undefined ? ANY : compile(o.items, `${path}.items`),
          min,
          max,
        };
      }
      case "string":
        return { kind: "string" };
      case "number":
      case "integer":
        return { kind: "number", integer: t === "integer" };
      case "boolean":
        return literal("true", "false");
      case "null":
        return literal("null");
    }
    throw new SchemaError(`${path}.type`, `unknown type '${t}'`);
  };
  const objectNode = (o: Schema, path: string): ObjectNode => {
    const propsIn = o.properties ?? {};
    if (typeof propsIn !== "object" || propsIn === null || Array.isArray(propsIn))
      throw new SchemaError(`${path}.properties`, "must be an object");
    const ap = o.additionalProperties;
    const additional = ap === undefined || ap === false ? null : compile(ap, `${path}.additionalProperties`);
    const node: ObjectNode = { kind: "object", props: [], required: [], additional };
    const add = (name: string, s: unknown) => {
      const key = JSON.stringify(name).slice(1, -1);
      node.props.push({ name, key: enc.encode(key), node: compile(s, `${path}.properties.${name}`) });
    };
    for (const [name, s] of Object.entries(propsIn)) add(name, s);
    const req = o.required ?? [];
    if (!Array.isArray(req)) throw new SchemaError(`${path}.required`, "must be a list of names");
    for (const name of new Set(req)) {
      if (typeof name !== "string") throw new SchemaError(`${path}.required`, "must be a list of names");
      let i = node.props.findIndex((p) => p.name === name);
      if (i < 0) {
        if (!additional) throw new SchemaError(`${path}.required`, `'${name}' is not among the properties`);
        add(name, true);
        node.props[node.props.length - 1]!.node = additional;
        i = node.props.length - 1;
      }
      node.required.push(i);
    }
    return node;
  };
  const ref = (r: string, path: string): Node => {
    const hit = refs.get(r);
    if (hit) return hit;
    const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(r);
    const target = m ? ((root as Schema)[m[1]!] as Schema | undefined)?.[m[2]!] : undefined;
    if (target === undefined) throw new SchemaError(path, `$ref '${r}' is not a local #/$defs/… definition`);
    // A placeholder filled in place, so a recursive reference reaches the finished node.
    const slot = { kind: "any" } as Node;
    refs.set(r, slot);
    Object.assign(slot, compile(target, r));
    return slot;
  };
  return compile(schema, "#");
}

/** Options of a union, which must begin with different bytes (literals beginning alike are merged). */
export function union(options: Node[], path: string): Node {
  if (options.length === 1) return options[0]!;
  const lits = options.filter((o) => o.kind === "literal");
  const rest = options.filter((o) => o.kind !== "literal");
  const merged: Node[] = [...rest];
  if (lits.length > 0) merged.push({ kind: "literal", options: lits.flatMap((l) => l.options) });
  const owner = new Array<number>(256).fill(-1);
  merged.forEach((o, i) => {
    for (const b of startBytes(o)) {
      if (owner[b]! >= 0)
        throw new SchemaError(path, "options that can begin with the same character are not supported");
      owner[b] = i;
    }
  });
  return merged.length === 1 ? merged[0]! : { kind: "union", options: merged };
}

/** The bytes a value of this node can begin with. */
export function startBytes(n: Node): number[] {
  const ch = (s: string) => [...s].map((c) => c.charCodeAt(0));
  switch (n.kind) {
    case "any":
      return ch('{["-0123456789tfn');
    case "object":
      return ch("{");
    case "array":
      return ch("[");
    case "string":
      return ch('"');
    case "number":
      return ch("-0123456789");
    case "literal":
      return [...new Set(n.options.map((o) => o[0]!))];
    case "union":
      return n.options.flatMap(startBytes);
    case "branch":
      return [...new Set(n.prefixes.map((o) => o[0]!))];
    case "seq":
      return startBytes(n.parts[0]!);
  }
}

function typeList(t: unknown, path: string): string[] | null {
  if (t === undefined) return null;
  if (typeof t === "string") return [t];
  if (Array.isArray(t) && t.length > 0 && t.every((x) => typeof x === "string")) return t as string[];
  throw new SchemaError(`${path}.type`, "must be a type name or a list of them");
}

function isType(v: unknown, t: string): boolean {
  if (t === "integer") return Number.isInteger(v);
  if (t === "null") return v === null;
  if (t === "array") return Array.isArray(v);
  if (t === "object") return typeof v === "object" && v !== null && !Array.isArray(v);
  return typeof v === t;
}

function count(v: unknown, path: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || (v as number) < 0)
    throw new SchemaError(path, "must be a non-negative integer");
  return v as number;
}
