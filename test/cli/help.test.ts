// Every command's --help exits 0 and is made from its option schema: each declared option appears with
// its default (src/core/schema.ts's helpText).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { HELP as CHAT_HELP } from "../../src/cli/chat.js";
import { HELP as GENERATE_HELP } from "../../src/cli/generate.js";
import { MODEL_OPTIONS } from "../../src/cli/modelArgs.js";
import { HELP as PRETRAIN_HELP } from "../../src/cli/pretrain.js";
import { docWithDefault, flagText } from "../../src/core/schema.js";
import { repoPath } from "../helpers.js";

const MAIN = repoPath("dist", "src", "cli", "main.js");

test("herd <command> --help exits 0 for every command of main.ts's table", () => {
  const src = readFileSync(repoPath("src", "cli", "main.ts"), "utf8");
  const table = src.slice(src.indexOf("const commands"), src.indexOf("function usage"));
  const names = [...table.matchAll(/^ {2}(?:"([a-z -]+)"|([a-z]+)): \{/gm)].map((m) => m[1] ?? m[2]!);
  assert.ok(names.length >= 13, names.join(","));
  for (const name of names) {
    const r = spawnSync(process.execPath, [MAIN, ...name.split(" "), "--help"], { encoding: "utf8" });
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    assert.match(r.stdout, /usage: herd/, name);
  }
});

test("generate's, chat's and pretrain's --help list every declared option with its default", () => {
  const squash = (s: string) => s.replace(/\s+/g, " ");
  for (const help of [GENERATE_HELP, CHAT_HELP]) {
    for (const [k, f] of Object.entries(MODEL_OPTIONS)) {
      assert.ok(help.includes(flagText(k, f)), k);
      assert.ok(squash(help).includes(squash(docWithDefault(f))), k);
    }
  }
  for (const flag of ["--demo", "--runs DIR", "--steps-scale F", "--allow-config-change", "--help, -h"])
    assert.ok(PRETRAIN_HELP.includes(flag), flag);
  assert.ok(squash(GENERATE_HELP).includes("(default: 0.6, the Llama 3 reference)"));
});
