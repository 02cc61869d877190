// `herd quantize --model IN --out OUT --format q8_0|q4_0`: weight-only quantisation of a bf16 or f32
// checkpoint into a directory `herd generate`, `herd chat` and `herd perplexity` load as they are
// (format: src/model/checkpoint/quant.ts). The tokenizer files beside the model are copied along.
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { writeFileAtomic } from "../io/atomic.js";
import { quantizeCheckpoint } from "../model/quantize.js";
import { isQuantFormat } from "../tensor/quant.js";
import { UsageError } from "./modelArgs.js";

const HELP = `usage: herd quantize --model IN --out OUT --format q8_0|q4_0

  --model, -m DIR   a bf16 or f32 Hugging Face checkpoint directory (or Meta: params.json + .pth)
  --out DIR         where the quantised checkpoint goes (written atomically; not IN itself)
  --format F        q8_0: 8-bit, blocks of 32 with an f16 scale (8.5 bits a weight)
                    q4_0: 4-bit, blocks of 32 with an f16 scale (4.5 bits a weight)
  -h, --help        this help

Every matrix (embedding, projections, lm_head) is quantised by ggml's reference rules; RMSNorm weights stay
f32. Check the cost with: herd perplexity --model OUT --text held-out.txt`;

/** Files beside the weights that a quantised directory needs too (tokenizers, generation settings). */
const COPIED = [
  "vocab.json",
  "tokenizer.model",
  "tokenizer.json",
  "tokenizer_config.json",
  "generation_config.json",
];

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: "string", short: "m" },
      out: { type: "string" },
      format: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  try {
    if (!values.model) throw new UsageError("--model DIR is required");
    if (!values.out) throw new UsageError("--out DIR is required");
    if (!values.format || !isQuantFormat(values.format))
      throw new UsageError(`--format must be q8_0 or q4_0${values.format ? `, not '${values.format}'` : ""}`);
    if (resolve(values.model) === resolve(values.out))
      throw new UsageError("--out must be another directory than --model");
    if (!existsSync(values.model)) throw new Error(`${values.model}: no such directory`);
    const t0 = performance.now();
    const report = await quantizeCheckpoint(values.model, values.out, values.format, (name, i, n) => {
      process.stderr.write(`[${i + 1}/${n}] ${name}\n`);
    });
    for (const f of COPIED) {
      const src = join(values.model, f);
      if (existsSync(src)) writeFileAtomic(join(values.out, f), readFileSync(src));
    }
    const mb = (b: number) => `${(b / 1e6).toFixed(b < 1e7 ? 2 : 0)} MB`;
    process.stdout.write(
      `${values.out}: ${report.tensors} tensors, ${report.format}, weights ${mb(report.bytesIn)} → ${mb(report.bytesOut)} (${((report.bytesOut / report.bytesIn) * 100).toFixed(1)}%) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
    );
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`herd quantize: ${e.message}\n\n${HELP}\n`);
      return 2;
    }
    throw e;
  }
}
