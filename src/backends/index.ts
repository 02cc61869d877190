// Backend selection. `HERD_BACKEND=js|wasm|native` picks one; the default is the fastest for a whole
// training step and for generation here: native when its addon was built and loads (every kernel of the
// interface is native, and it beats wasm on training steps, prefill and decode: bench/RESULTS.md), else wasm (with one line on stderr saying why native is not used),
// else js. Callers of the tensor ops never see which one runs.
import { existsSync } from "node:fs";
import { knob } from "../core/knobs.js";
import type { Backend } from "./backend.js";
import { jsBackend } from "./js/index.js";
import { createNativeBackend, nativeAvailable, nativeUnavailableReason } from "./native/index.js";
import { createWasmBackend, wasmKernelsPath } from "./wasm/index.js";

export type { Backend } from "./backend.js";

const factories: Record<string, () => Backend> = {
  js: () => jsBackend,
  wasm: () => createWasmBackend(),
};
// Listed only where the addon loads, so the conformance suite runs it wherever it was built.
if (nativeAvailable()) factories.native = () => createNativeBackend();

let active: Backend | null = null;
const made = new Map<string, Backend>();

/** Names of the backends this build knows. */
export function backendNames(): string[] {
  return Object.keys(factories);
}

/** The backend of this name, created once. */
export function backendByName(name: string): Backend {
  const make = factories[name];
  if (!make) throw new Error(`HERD_BACKEND: unknown backend '${name}' (have: ${backendNames().join(", ")})`);
  let b = made.get(name);
  if (!b) {
    b = make();
    made.set(name, b);
  }
  return b;
}

/** The active backend: HERD_BACKEND if set, else native when it loads, else wasm when built, else js. */
export function getBackend(): Backend {
  if (active) return active;
  const wanted = knob("HERD_BACKEND");
  if (wanted === "native" && !factories.native)
    throw new Error(`HERD_BACKEND=native: the native addon is not available (${nativeUnavailableReason()})`);
  if (wanted) active = backendByName(wanted);
  else if (factories.native) active = backendByName("native");
  else if (existsSync(wasmKernelsPath())) {
    process.stderr.write(
      `herd: using the wasm backend; the native addon is unavailable (${nativeUnavailableReason()})\n`,
    );
    active = backendByName("wasm");
  } else {
    process.stderr.write(
      "herd: neither the wasm kernels nor the native addon are built; using the js reference backend\n",
    );
    active = jsBackend;
  }
  return active;
}

/** Switch the active backend (tests and benchmarks). Tensors made on another backend keep their buffers. */
export function setBackend(b: Backend | string): Backend {
  active = typeof b === "string" ? backendByName(b) : b;
  return active;
}
