// `herd eval compare RUN...`: several evaluation runs (results.json files or their folders) side by side,
// e.g. a base model, its SFT and its DPO, or bf16 against Q8_0 against Q4_0: a Markdown table on stdout
// and, with --svg FILE, a grouped bar chart.

import { basename, dirname, resolve } from "node:path";
import { commandHelp, HELP_OPTION, type Schema, UsageError } from "../core/schema.js";
import { compareMarkdown, compareRows, compareSvg, readResults } from "../eval/report.js";
import { writeFileAtomic } from "../io/atomic.js";
import { parseCommand } from "./command.js";

export const OPTIONS = {
  svg: { type: "string", arg: "FILE", optional: true, doc: "also write a bar chart of the runs" },
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp("usage: herd eval compare RUN... [--svg FILE]", OPTIONS);

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(OPTIONS, HELP, argv, { positionals: true });
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length === 0) throw new UsageError("give at least one RUN (a results.json or its folder)");
  const runs = positionals.map((p) => readResults(p));
  const names = positionals.map((p) => {
    const full = resolve(p);
    return basename(full) === "results.json" ? basename(dirname(full)) : basename(full);
  });
  const rows = compareRows(runs);
  process.stdout.write(`${compareMarkdown(names, rows)}\n`);
  if (values.svg) writeFileAtomic(values.svg, compareSvg(names, rows));
  return 0;
}
