// The start every herd command shares: parse argv with the command's declared OPTIONS, print its HELP for
// --help, and turn a missing required option into a UsageError that names it (with its argument, from the
// schema). What a UsageError prints is main.ts's: the message, then the command's HELP, exit status 2.
import { type CliValues, parseCli, type Schema, UsageError } from "../core/schema.js";

/** The parsed values, with each required option known to be present. */
export interface Parsed<S extends Schema, R extends keyof CliValues<S> = never> {
  values: CliValues<S> & { [K in R]-?: NonNullable<CliValues<S>[K]> };
  positionals: string[];
}

/**
 * Parse a command's arguments: null once --help has been printed (the command returns 0), else the values.
 * `required` lists options that must be given ("--model DIR is required", the arg name from the schema).
 */
export function parseCommand<S extends Schema, R extends keyof CliValues<S> & string = never>(
  options: S,
  help: string,
  argv: string[],
  opts: { positionals?: boolean; required?: readonly R[] } = {},
): Parsed<S, R> | null {
  const parsed = parseCli(options, argv, { positionals: opts.positionals });
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(`${help}\n`);
    return null;
  }
  for (const name of opts.required ?? []) {
    const v = (parsed.values as Record<string, unknown>)[name];
    if (v === undefined || v === null || v === "") {
      const arg = options[name]?.arg;
      throw new UsageError(`--${name}${arg ? ` ${arg}` : ""} is required`);
    }
  }
  return parsed as Parsed<S, R>;
}
