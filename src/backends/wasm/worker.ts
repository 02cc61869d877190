// A wasm backend worker thread: instantiates the kernels over the shared memory and runs jobs from the
// control block forever (the protocol is described in pool.ts). Started by createPool(), never directly.
import process from "node:process";
import { workerData } from "node:worker_threads";
import { instantiate, type WasmMemory, type WasmModule } from "./kernels.js";
import {
  ARGS_BYTE,
  DEAD,
  ERROR,
  MAX_ARGS,
  MSG_BYTE,
  MSG_LEN,
  NARGS,
  NTH,
  OP,
  PENDING,
  READY,
  SEQ,
  SPIN,
} from "./pool.js";

interface Data {
  module: WasmModule;
  memory: WasmMemory;
  sab: SharedArrayBuffer;
  ops: string[];
  tid: number;
}

const { module, memory, sab, ops, tid } = workerData as Data;
const exports = instantiate(module, memory);
const fns = ops.map((name) => exports[name]!);
const ctrl = new Int32Array(sab);
const args = new Float64Array(sab, ARGS_BYTE, MAX_ARGS);

function report(err: unknown): void {
  const text = new TextEncoder()
    .encode(String(err instanceof Error ? err.message : err))
    .slice(0, MSG_LEN - 1);
  if (Atomics.compareExchange(ctrl, ERROR, 0, tid) !== 0) return;
  const bytes = new Uint8Array(sab, MSG_BYTE, MSG_LEN);
  bytes.fill(0);
  bytes.set(text);
}

function loop(): void {
  let seen = Atomics.load(ctrl, SEQ);
  Atomics.add(ctrl, READY, 1);
  Atomics.notify(ctrl, READY);
  for (;;) {
    let spin = 0;
    while (Atomics.load(ctrl, SEQ) === seen) {
      if (++spin > SPIN) Atomics.wait(ctrl, SEQ, seen);
    }
    seen = Atomics.load(ctrl, SEQ);
    const op = ctrl[OP]!;
    if (op < 0) return;
    try {
      const a: number[] = Array.from(args.subarray(0, ctrl[NARGS]!));
      a.push(tid, ctrl[NTH]!);
      fns[op]!(...a);
    } catch (err) {
      report(err);
    }
    if (Atomics.sub(ctrl, PENDING, 1) === 1) Atomics.notify(ctrl, PENDING);
  }
}

// A worker leaving while a job is pending (process.exit in a kernel's import, an uncaught error) says so,
// so that run() throws at once instead of waiting on the watchdog. A normal quit has no job pending.
let quitting = false;
process.on("exit", () => {
  if (quitting) return;
  Atomics.store(ctrl, DEAD, tid);
  report(new Error(`worker ${tid} exited`));
  Atomics.notify(ctrl, PENDING);
});

loop();
quitting = true;
