// Compiles the AssemblyScript kernels in assembly/ to build/kernels.wasm (run by `npm run build:wasm`,
// and so by `npm ci` through `prepare`). Flags: 128-bit SIMD and threads, no managed runtime (the kernels
// only touch raw pointers), and an imported shared memory of up to 4 GiB that the JS side owns and
// allocates from (src/backends/wasm/). `--wat` also writes build/kernels.wat for reading the output.
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import asc from "assemblyscript/asc";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
mkdirSync(join(root, "build"), { recursive: true });

const args = [
  join(root, "assembly", "index.ts"),
  "--outFile",
  join(root, "build", "kernels.wasm"),
  "--optimizeLevel",
  "3",
  "--shrinkLevel",
  "0",
  "--noAssert",
  "--runtime",
  "stub",
  "--enable",
  "simd",
  "--enable",
  "threads",
  "--importMemory",
  "--sharedMemory",
  "--initialMemory",
  "1",
  "--maximumMemory",
  "65536",
  "--noExportMemory",
];
if (process.argv.includes("--wat")) args.push("--textFile", join(root, "build", "kernels.wat"));

const { error, stderr } = await asc.main(args);
if (error) {
  console.error(stderr.toString());
  console.error(`build-wasm: ${error.message}`);
  process.exit(1);
}
