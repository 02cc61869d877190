// `herd tokenizer train`: learns a byte-level BPE vocabulary with the Llama 3 pattern from text and
// JSONL files and writes it as a tiktoken ranks file (+ a .json description). Progress goes to stderr:
// one updating line with rate and ETA on a terminal, plain lines otherwise.
import { commandHelp, HELP_OPTION, parseCli, type Schema, UsageError } from "../core/schema.js";
import { PieceCounter, type TrainProgress, trainFromCounts } from "../tokenizer/train.js";
import { countCorpus, writeTrainedTokenizer } from "../tokenizer/trainIO.js";

export const OPTIONS = {
  "vocab-size": { type: "integer", min: 256, doc: "number of BPE ranks, the 256 bytes included" },
  out: { type: "string", arg: "PATH", doc: "where to write the ranks file (atomically)" },
  field: { type: "string", default: "text", arg: "NAME", doc: "JSONL field with the text" },
  "min-frequency": { type: "integer", min: 1, default: 1, doc: "only merge pairs seen at least N times" },
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp(
  "usage: herd tokenizer train --vocab-size N --out PATH FILE...",
  OPTIONS,
  `Learns a byte-level BPE vocabulary (the Llama 3 pre-tokenisation pattern, tiktoken ranks format) from
text files and JSONL files (*.jsonl, *.ndjson: one JSON object per line, text in --field).
Writes PATH (ranks) and PATH.json (description: sha256, special tokens, counts). The model vocabulary is
N + 256: the 256 Llama 3 special tokens follow the ranks.`,
);

/** The parsed options and corpus files, or the problems with them. */
function parse(argv: string[]) {
  const { values, positionals } = parseCli(OPTIONS, argv, { positionals: true });
  if (values.help) return { values, positionals, vocabSize: 0, out: "" };
  const problems: string[] = [];
  if (values["vocab-size"] === undefined) problems.push("--vocab-size N is required");
  if (!values.out) problems.push("--out is required");
  if (positionals.length === 0) problems.push("give at least one corpus file");
  if (problems.length > 0) throw new UsageError(problems.join("; "));
  return { values, positionals, vocabSize: values["vocab-size"]!, out: values.out! };
}

export async function run(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`herd tokenizer train: ${e.message}\n\n${HELP}\n`);
    return 2;
  }
  const { values, positionals, vocabSize } = parsed;
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const minFrequency = values["min-frequency"];
  const progress = new ProgressLine(process.stderr);
  const started = Date.now();
  const counter = new PieceCounter();
  await countCorpus(positionals, counter, {
    field: values.field,
    onBytes: (done, total) => progress.update("reading", done, total, "MB", 1e6),
  });
  progress.done(`read ${counter.totalPieces} pieces (${counter.counts.size} distinct)`);
  const result = trainFromCounts(
    counter.counts,
    {
      vocabSize,
      minFrequency,
      onProgress: (p: TrainProgress) => progress.update("merging", p.done, p.total, "merges", 1),
    },
    counter.totalPieces,
  );
  const seconds = (Date.now() - started) / 1000;
  progress.done(`learned ${result.merges.length} merges`);
  if (result.tokens.length < vocabSize) {
    process.stderr.write(
      `note: the corpus ran out of pairs at ${result.tokens.length} ranks (asked for ${vocabSize})\n`,
    );
  }
  writeTrainedTokenizer(parsed.out, result, {
    corpus: positionals,
    jsonlField: values.field,
    minFrequency,
    seconds,
  });
  process.stderr.write(
    `wrote ${values.out} (${result.tokens.length} ranks + 256 special tokens) and ${values.out}.json in ${seconds.toFixed(1)} s\n`,
  );
  return 0;
}

/** Renders progress: a rewritten line with rate and ETA on a TTY, a line per 10% otherwise. */
class ProgressLine {
  private start = Date.now();
  private phase = "";
  private lastDecile = -1;
  private lastDraw = 0;

  constructor(private readonly out: NodeJS.WriteStream) {}

  update(phase: string, done: number, total: number, unit: string, scale: number): void {
    if (phase !== this.phase) {
      this.phase = phase;
      this.start = Date.now();
      this.lastDecile = -1;
    }
    const secs = (Date.now() - this.start) / 1000;
    const rate = secs > 0 ? done / scale / secs : 0;
    const frac = total > 0 ? done / total : 0;
    const eta = frac > 0 ? (secs / frac) * (1 - frac) : Number.NaN;
    const text = `${phase}: ${(done / scale).toFixed(scale > 1 ? 1 : 0)}/${(total / scale).toFixed(scale > 1 ? 1 : 0)} ${unit} (${(100 * frac).toFixed(0)}%), ${rate.toFixed(1)} ${unit}/s, ETA ${Number.isFinite(eta) ? `${eta.toFixed(0)} s` : "?"}`;
    if (this.out.isTTY) {
      const now = Date.now();
      if (now - this.lastDraw < 100 && done < total) return;
      this.lastDraw = now;
      this.out.write(`\r\x1b[2K${text}`);
    } else {
      const decile = Math.floor(frac * 10);
      if (decile !== this.lastDecile) {
        this.lastDecile = decile;
        this.out.write(`${text}\n`);
      }
    }
  }

  done(message: string): void {
    this.out.write(this.out.isTTY ? `\r\x1b[2K${message}\n` : `${message}\n`);
  }
}
