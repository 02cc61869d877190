// Builds the native backend's addon (native/*.cc → native/build/Release/herd_native.node) with the
// node-gyp that npm bundles, against the installed Node headers (npm's `nodedir`, else the headers
// beside this node binary): it never downloads anything. Run by `npm run build:native`, and so by
// `npm ci` through `prepare`. Without a compiler (or headers) the build fails, this prints one line, and
// the install still succeeds: herd then uses the wasm backend. HERD_NATIVE=0 skips the build; an addon
// newer than its sources is kept.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(root, "native");

function nodeGypScript() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(
      dirname(process.execPath),
      "..",
      "lib",
      "node_modules",
      "npm",
      "node_modules",
      "node-gyp",
      "bin",
      "node-gyp.js",
    ),
  ];
  return candidates.find((c) => c && existsSync(c));
}

function nodeDir() {
  const candidates = [process.env.npm_config_nodedir, join(dirname(process.execPath), "..")];
  return candidates.find((d) => d && existsSync(join(d, "include", "node", "node_api.h")));
}

// Up to date: the addon is newer than every source (so `npm test`, which builds, does not recompile).
function upToDate() {
  const out = join(nativeDir, "build", "Release", "herd_native.node");
  if (!existsSync(out)) return false;
  const built = statSync(out).mtimeMs;
  const sources = readdirSync(nativeDir).filter((f) => /\.(cc|h|gyp)$/.test(f));
  return sources.every((f) => statSync(join(nativeDir, f)).mtimeMs < built);
}

function main() {
  // HERD_NATIVE is declared in src/core/knobs.ts (this script runs before tsc, so it reads it itself, with
  // the knobs' rule: unset or empty is the default, anything but 0 or 1 is an error).
  const want = process.env.HERD_NATIVE ?? "";
  if (want !== "" && want !== "0" && want !== "1") throw new Error(`HERD_NATIVE='${want}': expected 0 or 1`);
  if (want === "0") return "skipped (HERD_NATIVE=0)";
  if (upToDate()) return null;
  const gyp = nodeGypScript();
  if (!gyp) return "node-gyp not found";
  const dir = nodeDir();
  if (!dir) return "no installed Node headers (include/node/node_api.h)";
  const r = spawnSync(process.execPath, [gyp, "rebuild", `--nodedir=${dir}`, "--loglevel=error"], {
    cwd: nativeDir,
    encoding: "utf8",
    env: { ...process.env, npm_config_nodedir: dir },
  });
  if (r.status !== 0) {
    const err = `${r.stderr ?? ""}${r.stdout ?? ""}`.split("\n").find((l) => /error/i.test(l)) ?? "";
    return `node-gyp failed${err ? `: ${err.trim().slice(0, 200)}` : ""}`;
  }
  return null;
}

const failure = main();
if (failure) console.log(`herd: native backend not built (${failure}); herd will use the wasm backend`);
