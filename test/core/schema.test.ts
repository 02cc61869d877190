// src/core/schema.ts: defaults filled, each type's errors with their field paths, unknown fields listed,
// nested objects and lists, --help rendering and the parseArgs bridge.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  configTable,
  helpText,
  parseCli,
  type Schema,
  SchemaError,
  UsageError,
  validate,
  validateField,
} from "../../src/core/schema.js";

const STEP = {
  steps: { type: "integer", min: 1, doc: "steps" },
  lr: { type: "number", min: 0, minExclusive: true, default: 0.001, doc: "rate" },
} as const satisfies Schema;

const RUN = {
  name: { type: "string", nonEmpty: true, doc: "name" },
  seed: { type: "integer", min: 0, default: 1, doc: "seed" },
  kind: { type: "enum", choices: ["a", "b"], default: "a", doc: "kind" },
  fast: { type: "boolean", default: false, doc: "fast" },
  files: { type: "strings", default: ["x"], doc: "files" },
  depths: { type: "numbers", min: 0, max: 1, default: [0.5], doc: "depths" },
  limit: { type: "integer", min: 1, max: 8, optional: true, doc: "limit" },
  tok: { type: "string", nullable: true, default: null, doc: "tok" },
  opt: {
    type: "object",
    fields: { beta: { type: "number", min: 0, max: 1, default: 0.9, doc: "β" } },
    doc: "o",
  },
  stages: { type: "list", of: STEP, nonEmpty: true, doc: "stages" },
} as const satisfies Schema;

test("validate fills defaults and returns the typed value", () => {
  const v = validate(RUN, { name: "r", stages: [{ steps: 3 }] }, "my-run.yaml");
  assert.deepEqual(v, {
    name: "r",
    seed: 1,
    kind: "a",
    fast: false,
    files: ["x"],
    depths: [0.5],
    tok: null,
    opt: { beta: 0.9 },
    stages: [{ steps: 3, lr: 0.001 }],
  });
  const steps: number = v.stages[0]!.steps; // the type follows from the schema
  assert.equal(steps, 3);
});

test("errors name the file and the field path", () => {
  const bad = (raw: Record<string, unknown>, re: RegExp) =>
    assert.throws(
      () => validate(RUN, { name: "r", stages: [{ steps: 1 }], ...raw }, "my-run.yaml"),
      (e) => {
        assert.ok(e instanceof SchemaError);
        assert.match(e.message, re);
        return true;
      },
    );
  bad(
    { stages: [{ steps: 1 }, { steps: 1 }, { steps: 0 }] },
    /my-run\.yaml: field 'stages\[2\]\.steps' must be an integer ≥ 1, got 0$/,
  );
  bad({ stages: [{ steps: 1.5 }] }, /field 'stages\[0\]\.steps' must be an integer ≥ 1, got 1\.5/);
  bad({ stages: [{ steps: 1, lr: 0 }] }, /field 'stages\[0\]\.lr' must be a positive number, got 0/);
  bad({ stages: [] }, /field 'stages' must be a non-empty list of objects, got \[\]/);
  bad({ stages: [3] }, /field 'stages\[0\]' must be an object, got 3/);
  bad({ stages: [{}] }, /field 'stages\[0\]\.steps' is missing/);
  bad({ name: "" }, /field 'name' must be a non-empty string, got ""/);
  bad({ kind: "c" }, /field 'kind' must be one of a, b, got "c"/);
  bad({ fast: 1 }, /field 'fast' must be true or false, got 1/);
  bad({ files: [1] }, /field 'files' must be a list of strings, got \[1\]/);
  bad({ depths: [2] }, /field 'depths' must be a list of numbers in \[0, 1\], got \[2\]/);
  bad({ limit: 9 }, /field 'limit' must be at most 8, got 9/);
  bad({ opt: { beta: 2 } }, /field 'opt\.beta' must be at most 1, got 2/);
  bad({ opt: { gamma: 1 } }, /field 'opt\.gamma' is not a known field \(known: beta\)/);
  bad(
    { shedule: {} },
    /field 'shedule' is not a known field \(known: name, seed, kind, fast, files, depths, limit, tok, opt, stages\)/,
  );
  bad({ seed: -1, kind: "z" }, /field 'seed' .*\n.*field 'kind'/);
  assert.throws(() => validate(RUN, [], "f.json"), /f\.json: must be an object, got \[\]$/);
  assert.throws(
    () =>
      validateField(
        { type: "integer", min: 1, max: 512, doc: "" },
        1e9,
        "x/config.json",
        "num_hidden_layers",
      ),
    /x\/config\.json: field 'num_hidden_layers' must be at most 512, got 1000000000$/,
  );
});

const CLI = {
  model: { type: "string", short: "m", arg: "DIR", doc: "checkpoint directory" },
  "max-tokens": { type: "integer", min: 0, default: 256, doc: "new tokens at most" },
  "top-p": {
    type: "number",
    min: 0,
    minExclusive: true,
    max: 1,
    default: 0.9,
    arg: "P",
    doc: "nucleus mass",
  },
  stop: { type: "strings", arg: "STRING", doc: "stop text (repeatable)" },
  f32: { type: "boolean", default: false, doc: "widen weights" },
  help: { type: "boolean", short: "h", default: false, doc: "this help" },
} as const satisfies Schema;

test("helpText renders one line per option with its default", () => {
  assert.equal(
    helpText(CLI),
    [
      "  --model, -m DIR  checkpoint directory",
      "  --max-tokens N   new tokens at most (default 256)",
      "  --top-p P        nucleus mass (default 0.9)",
      "  --stop STRING    stop text (repeatable)",
      "  --f32            widen weights",
      "  --help, -h       this help",
    ].join("\n"),
  );
  assert.match(configTable(RUN), /\| `stages\[\]\.lr` \| a positive number \| `0\.001` \| rate \|/);
});

test("parseCli converts and checks values; usage errors are UsageErrors", () => {
  const { values, positionals } = parseCli(
    CLI,
    ["-m", "d", "--max-tokens", "7", "--stop", "a", "--stop", "b", "x"],
    {
      positionals: true,
    },
  );
  assert.deepEqual(values, {
    model: "d",
    "max-tokens": 7,
    "top-p": 0.9,
    stop: ["a", "b"],
    f32: false,
    help: false,
  });
  assert.deepEqual(positionals, ["x"]);
  const usage = (argv: string[], re: RegExp) =>
    assert.throws(
      () => parseCli(CLI, argv),
      (e) => e instanceof UsageError && re.test(e.message),
    );
  usage(["--max-tokens", "x"], /^--max-tokens: bad value 'x' \(expected an integer ≥ 0\)$/);
  usage(["--max-tokens", ""], /--max-tokens: bad value ''/);
  usage(["--top-p", "0"], /--top-p: bad value '0' \(expected a number in \(0, 1\]\)/);
  usage(["--nope"], /nope/);
  usage(["stray"], /stray/);
});

test("a valued boolean takes true/false on the command line (a true default can be turned off)", () => {
  const S = {
    bos: { type: "boolean", default: true, valued: true, doc: "add BOS" },
    quiet: { type: "boolean", default: false, doc: "quiet" },
  } as const satisfies Schema;
  assert.deepEqual(parseCli(S, ["--bos", "false"]).values, { bos: false, quiet: false });
  assert.deepEqual(parseCli(S, ["--bos", "1", "--quiet"]).values, { bos: true, quiet: true });
  assert.deepEqual(parseCli(S, []).values, { bos: true, quiet: false });
  assert.throws(
    () => parseCli(S, ["--bos", "maybe"]),
    (e) => e instanceof UsageError && /^--bos: bad value 'maybe' \(expected true or false\)$/.test(e.message),
  );
  assert.throws(() => parseCli(S, ["--quiet", "false"]), UsageError, "a flag takes no value");
  assert.equal(helpText(S), `  --bos true|false  add BOS (default true)\n  ${"--quiet".padEnd(18)}quiet`);
});
