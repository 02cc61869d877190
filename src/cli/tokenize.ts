// `herd tokenize encode|decode|count [FILE]`: the Llama 3 tokenizer (or any ranks file) on the command
// line. Input comes from FILE, --text or stdin; encode prints ids, decode reads ids and prints text.
import { readFileSync } from "node:fs";
import { commandHelp, HELP_OPTION, parseCli, type Schema } from "../core/schema.js";
import { Tokenizer } from "../tokenizer/tiktoken.js";

const USAGE = "usage: herd tokenize <encode|decode|count> [FILE] [options]";

const PROSE = `  encode   text → ids (space-separated; --json for a JSON array)
  decode   ids (separated by spaces, commas or newlines, or a JSON array) → text
  count    text → number of tokens

Input is FILE, or --text, or stdin.`;

export const OPTIONS = {
  tokenizer: {
    type: "string",
    arg: "PATH",
    defaultDoc: "Meta's Llama 3 tokenizer, shipped",
    doc: "a tiktoken-format ranks file",
  },
  sha256: { type: "string", arg: "HEX", doc: "refuse the ranks file unless its sha256 is HEX" },
  text: { type: "string", arg: "STRING", doc: "input given on the command line" },
  bos: { type: "boolean", default: false, doc: "add <|begin_of_text|> (encode)" },
  eos: { type: "boolean", default: false, doc: "add <|end_of_text|> (encode)" },
  "allow-special": {
    type: "boolean",
    default: false,
    doc: "recognise special-token text such as <|eot_id|> in the input (encode, count)",
  },
  json: { type: "boolean", default: false, doc: "print ids as a JSON array (encode)" },
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp(USAGE, OPTIONS, PROSE);

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(OPTIONS, argv, { positionals: true });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const [mode, file, ...extra] = positionals;
  if (mode !== "encode" && mode !== "decode" && mode !== "count") {
    process.stderr.write(`herd tokenize: say encode, decode or count\n\n${HELP}\n`);
    return 2;
  }
  if (extra.length > 0 || (file !== undefined && values.text !== undefined)) {
    process.stderr.write("herd tokenize: give one input: a FILE, --text or stdin\n");
    return 2;
  }
  const tok = values.tokenizer
    ? Tokenizer.fromFile(values.tokenizer, { sha256: values.sha256 })
    : Tokenizer.llama3({ sha256: values.sha256 });
  const input = values.text ?? readFileSync(file ?? 0, "utf8");
  if (mode === "decode") {
    const ids = parseIds(input);
    process.stdout.write(tok.decode(ids));
    return 0;
  }
  const ids = tok.encode(input, {
    bos: values.bos,
    eos: values.eos,
    allowedSpecial: values["allow-special"] ? "all" : undefined,
  });
  if (mode === "count") process.stdout.write(`${ids.length}\n`);
  else process.stdout.write(values.json ? `${JSON.stringify(ids)}\n` : `${ids.join(" ")}\n`);
  return 0;
}

function parseIds(text: string): number[] {
  const t = text.trim();
  if (t === "") return [];
  const parts = t.startsWith("[") ? (JSON.parse(t) as unknown[]).map(String) : t.split(/[\s,]+/);
  return parts.map((p, k) => {
    if (!/^\d+$/.test(p)) throw new Error(`decode: item ${k + 1} ("${p}") is not a token id`);
    return Number(p);
  });
}
