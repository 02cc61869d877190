// `npm start`, end to end, the way a new user runs it: the command is package.json's own `start` script
// (less its build step, which `npm test` has just done), run from a fresh temporary directory with a
// relative runs folder, shortened by `--steps-scale 0.02` (27 steps of the same three-stage recipe). The
// run must finish, its final weights must load and generate, and its held-out loss must have fallen
// well below an untrained model's. Then the same command is killed with SIGKILL right after its first
// checkpoint and started again: it resumes and ends with the very same final weights.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { generate } from "../../src/generate/generate.js";
import { loadModel } from "../../src/model/load.js";
import { repoPath } from "../helpers.js";

const SCALE = ["--runs", "runs", "--steps-scale", "0.02"];

/** package.json's start script as argv, without its `npm run build &&` prefix, plus `extra`. */
function startCommand(extra: string[]): string[] {
  const pkg = JSON.parse(readFileSync(repoPath("package.json"), "utf8")) as { scripts: { start: string } };
  const parts = pkg.scripts.start.split("&&").map((p) => p.trim());
  assert.equal(parts[0], "npm run build", "the start script builds first");
  assert.equal(parts.length, 2, `start script: ${pkg.scripts.start}`);
  const argv = parts[1]!.split(/\s+/);
  assert.equal(argv[0], "node");
  return [repoPath(argv[1]!), ...argv.slice(2), ...extra];
}

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
}

/** Run the start command in `cwd`; `killWhen` sees the output so far and may SIGKILL the process. */
function runStart(cwd: string, killWhen?: (out: string) => boolean): Promise<Ran> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, startCommand(SCALE), { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const onData = (b: Buffer) => {
      out += b.toString("utf8");
      if (killWhen?.(out) && child.exitCode === null) child.kill("SIGKILL");
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", fail);
    child.on("close", (code, signal) => done({ code, signal, out }));
  });
}

const made: string[] = [];
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "herd-npm-start-"));
  made.push(d);
  return d;
}

const finalWeights = (cwd: string) => readFileSync(join(cwd, "runs", "demo", "final", "model.safetensors"));

let firstRun: string | null = null;

test("npm start from a fresh directory with a relative runs folder: trains, loads, generates", async () => {
  const cwd = tempDir();
  const r = await runStart(cwd);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /estimate on this machine: about /);
  assert.match(r.out, /--- sample 3 ---/);
  const run = join(cwd, "runs", "demo");
  assert.ok(!existsSync(join(cwd, "runs", "runs")), "paths are not resolved twice");
  const config = JSON.parse(readFileSync(join(run, "config.json"), "utf8"));
  assert.equal(config.data.shards[0], join(cwd, "runs", "demo-data", "main.tok"));
  assert.deepEqual(
    config.stages.map((s: { steps: number }) => s.steps),
    [24, 2, 1],
  );
  const metrics = readFileSync(join(run, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { step: number; loss: number; valLoss?: number });
  assert.equal(metrics.length, 27);
  const val = metrics.filter((m) => m.valLoss !== undefined).map((m) => m.valLoss!);
  assert.ok(val.length >= 3, "held-out loss at every stage's end");
  // An untrained model's loss is about ln(4096) = 8.3 (the first step's training loss is that too).
  assert.ok(metrics[0]!.loss > 8, `first loss ${metrics[0]!.loss}`);
  assert.ok(val.at(-1)! < metrics[0]!.loss - 1, `held-out loss ${val.join(", ")}`);

  const model = await loadModel(join(run, "final"));
  try {
    const g = generate(model, [model.config.bosTokenId ?? 0], {
      maxNewTokens: 16,
      temperature: 0,
      stopIds: [],
    });
    assert.equal(g.tokens.length, 16);
    assert.ok(g.tokens.every((id) => id >= 0 && id < 4096));
  } finally {
    model.dispose();
  }
  firstRun = cwd;
});

test("npm start killed with SIGKILL after its first checkpoint resumes to the same final weights", async () => {
  const cwd = tempDir();
  const killed = await runStart(cwd, (out) => /checkpoint \S*step-00000024/.test(out));
  assert.equal(killed.signal, "SIGKILL", `the run ended before the kill:\n${killed.out}`);
  assert.ok(!existsSync(join(cwd, "runs", "demo", "final")));
  const resumed = await runStart(cwd);
  assert.equal(resumed.code, 0, resumed.out);
  assert.match(resumed.out, /resumed from step 24/);
  if (firstRun === null) return; // the first test failed; it says why
  assert.ok(
    finalWeights(cwd).equals(finalWeights(firstRun)),
    "resumed final weights differ from the unbroken run's",
  );
});
