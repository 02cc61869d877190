// The two bits of Python that Meta's prompt code leans on, so herd renders and parses the same text:
// json.dumps (", " and ": " separators, ASCII-only output, optionally sorted keys and Jinja's
// HTML-safe escaping of < > & ') and Python literals in the Llama 3.2 tool-call list
// `[f(a='x', b=2), g(c=[1, 2])]` (strings, numbers, True/False/None, lists, tuples, dicts).

export type PyValue = string | number | boolean | null | PyValue[] | { [key: string]: PyValue };

export interface DumpOptions {
  /** json.dumps(sort_keys=True), as Jinja's tojson does */
  sortKeys?: boolean;
  /** Jinja's tojson: also escape < > & ' as \u003c \u003e \u0026 \u0027 */
  htmlSafe?: boolean;
}

/** Python's json.dumps(value) with its default separators and ensure_ascii. */
export function pyJsonDumps(value: unknown, opts: DumpOptions = {}): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : pyFloat(value);
  if (typeof value === "string") return pyString(value, opts.htmlSafe ?? false);
  if (Array.isArray(value)) return `[${value.map((v) => pyJsonDumps(v, opts)).join(", ")}]`;
  if (typeof value === "object") {
    let keys = Object.keys(value);
    if (opts.sortKeys) keys = keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const obj = value as Record<string, unknown>;
    return `{${keys.map((k) => `${pyString(k, opts.htmlSafe ?? false)}: ${pyJsonDumps(obj[k], opts)}`).join(", ")}}`;
  }
  throw new TypeError(`pyJsonDumps: cannot serialise ${typeof value}`);
}

function pyFloat(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "Infinity" : "-Infinity";
  return String(x);
}

function pyString(s: string, htmlSafe: boolean): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i]!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (c < 0x20 || c > 0x7e || (htmlSafe && (ch === "<" || ch === ">" || ch === "&" || ch === "'"))) {
      out += `\\u${c.toString(16).padStart(4, "0")}`;
    } else out += ch;
  }
  return `${out}"`;
}

/** A call in a Llama 3.2 tool-call list. */
export interface PyCall {
  name: string;
  args: Record<string, PyValue>;
}

/** Parses `[f(a=1, b='x'), g()]`: only a non-empty list of calls with keyword arguments; else null. */
export function parsePythonCallList(src: string): PyCall[] | null {
  const p = new LiteralParser(src);
  try {
    const calls: PyCall[] = [];
    p.expect("[");
    do {
      if (p.peek() === "]" && calls.length > 0) break; // trailing comma
      const name = p.identifier();
      p.expect("(");
      const args: Record<string, PyValue> = {};
      while (p.peek() !== ")") {
        const key = p.identifier();
        p.expect("=");
        args[key] = p.value();
        if (p.peek() !== ")") p.expect(",");
      }
      p.expect(")");
      calls.push({ name, args });
    } while (p.accept(","));
    p.expect("]");
    p.end();
    return calls;
  } catch {
    return null;
  }
}

/** A Python literal written back, as Meta's python_list tool format does (strings in double quotes). */
export function pyLiteral(v: unknown): string {
  if (v === null || v === undefined) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(pyLiteral).join(", ")}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .map((k) => `${JSON.stringify(k)}: ${pyLiteral(o[k])}`)
    .join(", ")}}`;
}

class LiteralParser {
  private i = 0;
  constructor(private readonly s: string) {}

  private skip(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i]!)) this.i++;
  }
  peek(): string {
    this.skip();
    return this.s[this.i] ?? "";
  }
  accept(ch: string): boolean {
    if (this.peek() !== ch) return false;
    this.i++;
    return true;
  }
  expect(ch: string): void {
    if (!this.accept(ch)) throw new Error(`expected ${ch} at ${this.i}`);
  }
  end(): void {
    this.skip();
    if (this.i !== this.s.length) throw new Error(`unexpected text at ${this.i}`);
  }
  identifier(): string {
    this.skip();
    const m = /^[\p{L}_][\p{L}\p{N}_]*/u.exec(this.s.slice(this.i));
    if (!m) throw new Error(`expected a name at ${this.i}`);
    this.i += m[0].length;
    return m[0];
  }
  value(): PyValue {
    const c = this.peek();
    if (c === "'" || c === '"') return this.string();
    if (c === "[" || c === "(") {
      const close = c === "[" ? "]" : ")";
      this.i++;
      const out: PyValue[] = [];
      while (this.peek() !== close) {
        out.push(this.value());
        if (this.peek() !== close) this.expect(",");
      }
      this.i++;
      return out;
    }
    if (c === "{") {
      this.i++;
      const out: Record<string, PyValue> = {};
      while (this.peek() !== "}") {
        const k = this.value();
        this.expect(":");
        out[String(k)] = this.value();
        if (this.peek() !== "}") this.expect(",");
      }
      this.i++;
      return out;
    }
    const m = /^(?:True|False|None|[-+]?(?:\d[\d_]*\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))/.exec(
      this.s.slice(this.i),
    );
    if (!m) throw new Error(`expected a value at ${this.i}`);
    this.i += m[0].length;
    if (m[0] === "True") return true;
    if (m[0] === "False") return false;
    if (m[0] === "None") return null;
    return Number(m[0].replace(/_/g, ""));
  }
  private string(): string {
    const q = this.s[this.i++]!;
    let out = "";
    for (;;) {
      const ch = this.s[this.i++];
      if (ch === undefined || ch === "\n") throw new Error("unterminated string");
      if (ch === q) return out;
      if (ch !== "\\") {
        out += ch;
        continue;
      }
      const e = this.s[this.i++];
      const simple: Record<string, string> = {
        n: "\n",
        t: "\t",
        r: "\r",
        "\\": "\\",
        "'": "'",
        '"': '"',
        "0": "\0",
      };
      if (e !== undefined && e in simple) out += simple[e];
      else if (e === "u" || e === "x") {
        const len = e === "u" ? 4 : 2;
        out += String.fromCharCode(Number.parseInt(this.s.slice(this.i, this.i + len), 16));
        this.i += len;
      } else out += `\\${e ?? ""}`;
    }
  }
}
