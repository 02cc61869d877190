// `herd tokenizer train`: learns a byte-level BPE vocabulary with the Llama 3 pattern from text and
// JSONL files and writes it as a tiktoken ranks file (+ a .json description). Progress goes to stderr:
// one updating line with rate and ETA on a terminal, plain lines otherwise.
import { parseArgs } from "node:util";
import { PieceCounter, type TrainProgress, trainFromCounts } from "../tokenizer/train.js";
import { countCorpus, writeTrainedTokenizer } from "../tokenizer/trainIO.js";

const HELP = `usage: herd tokenizer train --vocab-size N --out PATH FILE...

Learns a byte-level BPE vocabulary (the Llama 3 pre-tokenisation pattern, tiktoken ranks format) from
text files and JSONL files (*.jsonl, *.ndjson: one JSON object per line, text in --field).
Writes PATH (ranks) and PATH.json (description: sha256, special tokens, counts). The model vocabulary is
N + 256: the 256 Llama 3 special tokens follow the ranks.

options:
  --vocab-size N       number of BPE ranks, the 256 bytes included (≥ 256)
  --out PATH           where to write the ranks file (atomically)
  --field NAME         JSONL field with the text (default: text)
  --min-frequency N    only merge pairs seen at least N times (default 1)
  -h, --help           this help`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "vocab-size": { type: "string" },
      out: { type: "string" },
      field: { type: "string", default: "text" },
      "min-frequency": { type: "string", default: "1" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const vocabSize = Number(values["vocab-size"]);
  const minFrequency = Number(values["min-frequency"]);
  const problems: string[] = [];
  if (!Number.isInteger(vocabSize) || vocabSize < 256) problems.push("--vocab-size must be an integer ≥ 256");
  if (!values.out) problems.push("--out is required");
  if (!Number.isInteger(minFrequency) || minFrequency < 1)
    problems.push("--min-frequency must be an integer ≥ 1");
  if (positionals.length === 0) problems.push("give at least one corpus file");
  if (problems.length > 0) {
    process.stderr.write(`herd tokenizer train: ${problems.join("; ")}\n\n${HELP}\n`);
    return 2;
  }
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
  writeTrainedTokenizer(values.out!, result, {
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
