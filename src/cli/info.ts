// `herd info`: which tensor backends load on this machine, which one is active, the thread count, and
// the native GEMM's cache blocking (derived from this CPU's caches).
import { availableParallelism, cpus } from "node:os";
import { backendByName, backendNames, getBackend } from "../backends/index.js";
import { nativeCpuInfo } from "../backends/native/index.js";
import { knob } from "../core/knobs.js";
import { commandHelp, HELP_OPTION, parseCli } from "../core/schema.js";

export const OPTIONS = HELP_OPTION;

export const HELP = commandHelp(
  "usage: herd info",
  OPTIONS,
  "Shows the tensor backends that load here and the active one.",
);

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCli(OPTIONS, argv);
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  process.stdout.write(`node ${process.version} · ${cpu} · ${availableParallelism()} cores\n`);
  for (const name of backendNames()) {
    let status: string;
    try {
      backendByName(name);
      status = "available";
    } catch (err) {
      status = `unavailable (${err instanceof Error ? err.message : String(err)})`;
    }
    process.stdout.write(`backend ${name.padEnd(6)} ${status}\n`);
    const g = name === "native" && status === "available" ? nativeCpuInfo() : null;
    if (g)
      process.stdout.write(
        `  GEMM blocking: ${g.mr}×${g.nr} micro-tile, mc ${g.mc} kc ${g.kc} nc ${g.nc} (${g.blockingSource === "caches" ? `from the caches, ${g.cacheSource}` : g.blockingSource}: L1d ${g.l1d >> 10} KiB, L2 ${g.l2 >> 10} KiB, L3 ${g.l3 >> 10} KiB per core)\n`,
      );
  }
  process.stdout.write(
    `active backend: ${getBackend().name} (HERD_BACKEND=${knob("HERD_BACKEND") ?? "unset"}, HERD_THREADS=${knob("HERD_THREADS") ?? "unset"})\n`,
  );
  return 0;
}
