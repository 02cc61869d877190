// `herd eval compare RUN...`: several evaluation runs (results.json files or their folders) side by side,
// e.g. a base model, its SFT and its DPO, or bf16 against Q8_0 against Q4_0: a Markdown table on stdout
// and, with --svg FILE, a grouped bar chart.
import { basename, dirname, resolve } from "node:path";
import { commandHelp, HELP_OPTION, parseCli, type Schema, UsageError } from "../core/schema.js";
import { compareMarkdown, compareRows, compareSvg, readResults } from "../eval/report.js";
import { writeFileAtomic } from "../io/atomic.js";

export const OPTIONS = {
  svg: { type: "string", arg: "FILE", optional: true, doc: "also write a bar chart of the runs" },
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp("usage: herd eval compare RUN... [--svg FILE]", OPTIONS);

export async function run(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseCli(OPTIONS, argv, { positionals: true });
    if (values.help) {
      process.stdout.write(`${HELP}\n`);
      return 0;
    }
    if (positionals.length === 0)
      throw new UsageError("give at least one RUN (a results.json or its folder)");
    const runs = positionals.map((p) => readResults(p));
    const names = positionals.map((p) => {
      const full = resolve(p);
      return basename(full) === "results.json" ? basename(dirname(full)) : basename(full);
    });
    const rows = compareRows(runs);
    process.stdout.write(`${compareMarkdown(names, rows)}\n`);
    if (values.svg) writeFileAtomic(values.svg, compareSvg(names, rows));
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`herd eval compare: ${e.message}\n\n${HELP}\n`);
      return 2;
    }
    throw e;
  }
}
