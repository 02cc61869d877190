// Loading the compiled kernels (build/kernels.wasm, written by `npm run build:wasm`): where the file is,
// compiling it once per process, and instantiating it over a shared memory (on the main thread and in
// every worker). The project's TypeScript libs (ES2023 + node) do not declare the WebAssembly global, so
// the few parts of its API used here are typed locally.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../core/paths.js";

export interface WasmMemory {
  readonly buffer: SharedArrayBuffer;
  grow(pages: number): number;
}
/** A compiled module (opaque; structured-clonable to workers). */
export type WasmModule = object;

interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: Record<string, unknown> };
  Memory: new (desc: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Path of build/kernels.wasm at the repository root (it may not exist yet). */
export function wasmKernelsPath(): string {
  return join(packageRoot(), "build", "kernels.wasm");
}

let compiled: WasmModule | null = null;

/** The kernels, compiled synchronously once per process. */
export function kernelModule(): WasmModule {
  if (compiled === null) {
    const path = wasmKernelsPath();
    if (!existsSync(path)) throw new Error(`wasm backend: ${path} is missing; run \`npm run build:wasm\``);
    compiled = new WA.Module(readFileSync(path));
  }
  return compiled;
}

/** A shared memory of `initial` pages that can grow to 4 GiB (65536 pages of 64 KiB). */
export function sharedMemory(initial: number): WasmMemory {
  return new WA.Memory({ initial, maximum: 65536, shared: true });
}

/** Instantiate the kernels over `memory`; returns the exports (functions of numbers). */
export function instantiate(
  module: WasmModule,
  memory: WasmMemory,
): Record<string, (...a: number[]) => number> {
  const instance = new WA.Instance(module, {
    env: {
      memory,
      abort: () => {
        throw new Error("wasm kernels: abort");
      },
    },
  });
  return instance.exports as Record<string, (...a: number[]) => number>;
}
