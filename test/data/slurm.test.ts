// The Slurm executor against a real single-node Slurm (test/data/slurm/start.sh; .ci/run starts it): the
// stages run as sbatch job arrays chained with afterok dependencies, and the output equals a local run's
// byte for byte. Skipped, saying why, where no Slurm answers; the script checks below run everywhere.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { documentToJson } from "../../src/data/document.js";
import { validatePipeline } from "../../src/data/pipeline/config.js";
import { prepareRun } from "../../src/data/pipeline/run.js";
import { slurmScripts } from "../../src/data/pipeline/slurm.js";
import { repoPath } from "../helpers.js";
import { plantedCorpus } from "./corpus.js";
import { tempDir } from "./tmp.js";

function slurmIdle(): string | null {
  try {
    const out = execFileSync("sinfo", ["-h", "-o", "%T"], { encoding: "utf8", timeout: 5000 });
    return /idle|mixed/.test(out) ? null : `sinfo shows no idle node (${out.trim() || "no nodes"})`;
  } catch (e) {
    return `no Slurm here (${(e as Error).message.split("\n")[0]}); start one with test/data/slurm/start.sh as .ci/run does`;
  }
}

const why = slurmIdle();

test("Slurm executor: job arrays with dependencies give the local run's bytes", {
  skip: why ?? false,
  timeout: 180_000,
}, () => {
  const dir = tempDir("herd-slurm-");
  const c = plantedCorpus({ distinct: 40, exact: 4, near: 6, words: 80, seed: 2, editRates: [0.01] });
  const half = c.docs.length / 2;
  writeFileSync(
    join(dir, "a.jsonl"),
    c.docs
      .slice(0, half)
      .map((d) => `${documentToJson(d)}\n`)
      .join(""),
  );
  writeFileSync(
    join(dir, "b.jsonl"),
    c.docs
      .slice(half)
      .map((d) => `${documentToJson(d)}\n`)
      .join(""),
  );
  const pipeline = {
    name: "slurmtest",
    input: { paths: [join(dir, "a.jsonl"), join(dir, "b.jsonl")] },
    steps: [{ type: "lineDedup" }, { type: "minhashDedup", bands: 4, rows: 8, threshold: 0.6 }],
  };
  writeFileSync(join(dir, "p.json"), JSON.stringify(pipeline));
  const cli = repoPath("dist", "src", "cli", "main.js");
  const local = spawnSync(
    process.execPath,
    [cli, "data", "run", join(dir, "p.json"), "--output", join(dir, "local")],
    { encoding: "utf8" },
  );
  assert.equal(local.status, 0, local.stderr);
  const slurm = spawnSync(
    process.execPath,
    [
      cli,
      "data",
      "run",
      join(dir, "p.json"),
      "--output",
      join(dir, "slurm"),
      "--executor",
      "slurm",
      "--wait",
    ],
    {
      encoding: "utf8",
      timeout: 170_000,
    },
  );
  assert.equal(slurm.status, 0, `${slurm.stdout}\n${slurm.stderr}`);
  assert.match(slurm.stdout, /submitted 7 job\(s\)/);
  const files = (run: string) =>
    Object.fromEntries(
      readdirSync(join(run, "output")).map((f) => [f, readFileSync(join(run, "output", f), "utf8")]),
    );
  assert.deepEqual(files(join(dir, "slurm")), files(join(dir, "local")));
  const report = JSON.parse(readFileSync(join(dir, "slurm", "report.json"), "utf8")) as {
    funnel: { name: string }[];
  };
  assert.deepEqual(
    report.funnel.map((b) => b.name),
    ["read", "lineDedup", "minhashDedup"],
  );
  // One log per array task: stage 0 had 2 tasks, the buckets stage 4.
  const logs = readdirSync(join(dir, "slurm", "slurm", "logs"));
  assert.ok(
    logs.includes("s00-read-1.out") && logs.includes("s03-01-minhashDedup-buckets-3.out"),
    logs.join(" "),
  );
});

// The generated scripts, without Slurm: a hostile name is refused by field, and a run folder whose path
// holds shell syntax is only ever a quoted word — running the scripts with bash does the run, nothing else.
test("Slurm scripts: a hostile name is refused; a hostile run-folder path cannot run commands", () => {
  assert.throws(
    () => validatePipeline({ name: "x\ntouch /tmp/pwned", input: { paths: ["a"] }, steps: [] }),
    /field 'name' must be a name of letters, digits/,
  );
  const dir = tempDir("herd-slurm-");
  writeFileSync(join(dir, "in.jsonl"), '{"id":"a","text":"one"}\n');
  // Each name would run its `touch` if pasted inside double quotes (the second one closes them).
  const hostile = [`a $(touch ${dir}/M1) \`touch ${dir}/M2\``, `b ';touch ${dir}/M3;' "; touch ${dir}/M4; "`];
  for (const name of hostile) {
    const run = join(dir, name);
    const c = validatePipeline({
      name: "ok",
      input: { paths: [join(dir, "in.jsonl")] },
      output: run,
      steps: [],
    });
    const plan = prepareRun(c);
    assert.throws(() => slurmScripts(c, plan, { partition: "gpu\n#SBATCH --uid=0" }), /partition/);
    assert.throws(() => slurmScripts(c, plan, { partition: "$(touch x)" }), /partition/);
    for (const s of slurmScripts(c, plan, { partition: "debug" })) {
      for (const line of s.text.split("\n").filter((l) => l.startsWith("#SBATCH")))
        assert.match(line, /^#SBATCH --[a-z-]+=[\w./,%=:-]+$/, "an #SBATCH line with plain values only");
      mkdirSync(dirname(s.file), { recursive: true });
      writeFileSync(s.file, s.text);
      const check = spawnSync("bash", ["-n", s.file], { encoding: "utf8" });
      assert.equal(check.status, 0, check.stderr);
      const r = spawnSync("bash", [s.file], {
        encoding: "utf8",
        env: { ...process.env, SLURM_ARRAY_TASK_ID: "0" },
      });
      assert.equal(r.status, 0, r.stderr);
    }
    assert.ok(existsSync(join(run, "report.json")), "the scripts ran the pipeline in the hostile folder");
  }
  for (const m of ["M1", "M2", "M3", "M4"]) assert.ok(!existsSync(join(dir, m)), `${m} was not created`);
});
