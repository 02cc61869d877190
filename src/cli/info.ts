// `herd info`: which tensor backends load on this machine, which one is active, and the thread count.
import { availableParallelism, cpus } from "node:os";
import { parseArgs } from "node:util";
import { backendByName, backendNames, getBackend } from "../backends/index.js";

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { help: { type: "boolean", short: "h" } } });
  if (values.help) {
    process.stdout.write(
      "usage: herd info\n\nShows the tensor backends that load here and the active one.\n",
    );
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
  }
  process.stdout.write(
    `active backend: ${getBackend().name} (HERD_BACKEND=${process.env.HERD_BACKEND ?? "unset"}, HERD_THREADS=${process.env.HERD_THREADS ?? "unset"})\n`,
  );
  return 0;
}
