// `herd tokenize encode|decode|count [FILE]`: the Llama 3 tokenizer (or any ranks file) on the command
// line. Input comes from FILE, --text or stdin; encode prints ids, decode reads ids and prints text.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Tokenizer } from "../tokenizer/tiktoken.js";

const HELP = `usage: herd tokenize <encode|decode|count> [FILE] [options]

  encode   text → ids (space-separated; --json for a JSON array)
  decode   ids (separated by spaces, commas or newlines, or a JSON array) → text
  count    text → number of tokens

Input is FILE, or --text, or stdin.

options:
  --tokenizer PATH   a tiktoken-format ranks file (default: Meta's Llama 3 tokenizer, shipped)
  --sha256 HEX       refuse the ranks file unless its sha256 is HEX
  --text STRING      input given on the command line
  --bos, --eos       add <|begin_of_text|> / <|end_of_text|> (encode)
  --allow-special    recognise special-token text such as <|eot_id|> in the input (encode, count)
  --json             print ids as a JSON array (encode)
  -h, --help         this help`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      tokenizer: { type: "string" },
      sha256: { type: "string" },
      text: { type: "string" },
      bos: { type: "boolean", default: false },
      eos: { type: "boolean", default: false },
      "allow-special": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
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
