// Every command of main.ts's table (and each of its subcommands: `data <step>`, `scaling fit`, `pretrain
// check`, ...) prints, for `--help`, exactly what src/core/schema.ts's commandHelp makes of its declared
// options, exits 0, and (each command of the table) refuses an undeclared option with exit 2: its options are
// parsed by the same schema. No option line is written by hand: the text above `options:` holds none, and every flag it
// mentions is declared. Commands added to the table later are covered without touching this file.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { promisify } from "node:util";
import { type CommandHelp, commands } from "../../src/cli/main.js";
import { helpText, type Schema } from "../../src/core/schema.js";
import { STEPS } from "../../src/data/pipeline/registry.js";
import { repoPath } from "../helpers.js";

const MAIN = repoPath("dist", "src", "cli", "main.js");
const run = promisify(execFile);

interface Case {
  argv: string[];
  help: { HELP: string; OPTIONS: Schema };
  /** Every flag the module declares (a command's usage may name its subcommands' flags). */
  flags: Set<string>;
  /** A command of the table itself, not one of its subcommands. */
  top: boolean;
}

async function cases(): Promise<Case[]> {
  const out: Case[] = [];
  for (const [name, cmd] of Object.entries(commands)) {
    const mod: CommandHelp = await cmd.load();
    const subs = Object.entries(mod.SUBCOMMANDS ?? {});
    const flags = new Set<string>();
    for (const h of [mod, ...subs.map(([, h]) => h)])
      for (const [k, f] of Object.entries(h.OPTIONS)) {
        flags.add(`--${k}`);
        if (f.short) flags.add(`-${f.short}`);
      }
    out.push({ argv: name.split(" "), help: mod, flags, top: true });
    for (const [sub, h] of subs) out.push({ argv: [...name.split(" "), sub], help: h, flags, top: false });
  }
  return out;
}

/** `herd ...argv`: exit status and output. */
async function herd(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [MAIN, ...argv], { encoding: "utf8" });
    return { code: 0, ...r };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

/** Runs `f` over `items`, `n` at a time. */
async function pool<T>(items: T[], n: number, f: (x: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let x = queue.shift(); x !== undefined; x = queue.shift()) await f(x);
    }),
  );
}

test("herd <command> --help prints exactly its schema's help, for every command and subcommand", async () => {
  const all = await cases();
  assert.ok(all.length >= 14 + STEPS.length, `${all.length} commands`);
  assert.ok(all.some((c) => c.argv.join(" ") === "data dedup"));
  assert.ok(all.some((c) => c.argv.join(" ") === "scaling predict"));
  await pool(all, 4, async ({ argv, help, flags, top }) => {
    const name = argv.join(" ");
    const r = await herd([...argv, "--help"]);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    assert.equal(r.stdout, `${help.HELP}\n`, name);
    assert.ok(help.HELP.startsWith(`usage: herd ${name}`), name);
    const options = `\n\noptions:\n${helpText(help.OPTIONS)}`;
    assert.ok(help.HELP.endsWith(options), `${name}: the help ends with its schema's option lines`);
    const above = help.HELP.slice(0, -options.length);
    assert.doesNotMatch(above, /^\s*-{1,2}[a-z]/m, `${name}: an option line written by hand`);
    const usage = above.split("\n\n")[0]!;
    for (const flag of usage.match(/(?<![\w-])--?[a-z][a-z0-9-]*/g) ?? [])
      assert.ok(flags.has(flag), `${name}: its usage names ${flag}, which no schema declares`);
    if (!top) return;
    const bad = await herd([...argv, "--no-such-option"]);
    assert.equal(bad.code, 2, `${name} --no-such-option: ${bad.stderr}`);
    assert.match(bad.stderr, /no-such-option/, name);
  });
});

test("generate's sampling defaults in --help are the library's (SAMPLING_DEFAULTS)", async () => {
  const { HELP } = await import("../../src/cli/generate.js");
  const { SAMPLING_DEFAULTS } = await import("../../src/generate/sampling.js");
  const squash = (s: string) => s.replace(/\s+/g, " ");
  assert.ok(squash(HELP).includes(`(default: ${SAMPLING_DEFAULTS.temperature}, the Llama 3 reference)`));
  assert.ok(squash(HELP).includes(`--top-p P nucleus mass (default ${SAMPLING_DEFAULTS.topP})`));
});
