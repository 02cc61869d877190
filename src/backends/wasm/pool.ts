// The wasm backend's thread pool: worker_threads that each instantiate the same compiled kernels over the
// same shared WebAssembly.Memory, and a synchronous dispatch in which the calling (main) thread takes
// part as thread 0. Kernels split their work statically by (tid, nth), so a job is just "call export
// `op` with these arguments" on every thread at once.
//
// Protocol, over a small SharedArrayBuffer (`ctrl`, Int32 slots; `args`, f64 slots after them):
//   start-up  each worker instantiates the module, then Atomics.add(READY, 1) + notify; the creator
//             Atomics.wait()s until READY = workers (so creation is synchronous; 10 s time-out).
//   dispatch  the main thread writes OP, NARGS and args[], sets PENDING = workers, then
//             Atomics.add(SEQ, 1) + notify(SEQ) (SEQ is the job counter the workers sleep on).
//             It runs the job itself as tid 0, then waits (a short spin, then Atomics.wait) until
//             PENDING = 0. The seq-cst Atomics on SEQ and PENDING order the plain memory accesses:
//             arguments are visible to the workers, and their results to the main thread.
//   worker    loop: wait until SEQ differs from the last job it ran (a short spin first, since
//             kernels come in bursts), read OP and args, call the export with (..args, tid, nth),
//             then Atomics.sub(PENDING, 1) and notify when it reaches 0. A worker that throws records
//             the message (ERROR, then UTF-8 text at MSG) and still counts down, so the main thread
//             never waits forever; the main thread then throws it.
//   quit      OP = -1 and a SEQ bump: workers leave their loop; dispose() also terminate()s them.
//   death     a worker that exits (its `exit` handler) sets DEAD and counts its share down; one that
//             dies without running handlers (killed, out of memory) is caught by a watchdog: kernels
//             split work evenly, so once the main thread's own share is done the workers should follow
//             soon — if PENDING has not moved for max(WATCHDOG_MS, 20× the main share's time), run()
//             throws instead of waiting forever. The pool is unusable after either.
// Only one job is in flight at a time (the main thread blocks until it is done), and memory.grow()
// happens only on the main thread between jobs.
import { Worker } from "node:worker_threads";
import type { WasmMemory, WasmModule } from "./kernels.js";

export const SEQ = 0;
export const PENDING = 1;
export const READY = 2;
export const OP = 3;
export const NARGS = 4;
export const NTH = 5;
export const ERROR = 6;
export const DEAD = 7;
export const ARGS_BYTE = 64;
export const MAX_ARGS = 24;
export const MSG_BYTE = ARGS_BYTE + MAX_ARGS * 8;
export const MSG_LEN = 1024;
export const CTRL_BYTES = MSG_BYTE + MSG_LEN;
/** Spin iterations before sleeping in Atomics.wait (a few microseconds). */
export const SPIN = 20000;
/** Least time the workers may lag the main thread's share of a job before the pool is declared dead. */
export const WATCHDOG_MS = 30_000;

export type KernelFn = (...args: number[]) => void;

export interface Pool {
  /** Threads that take part in a job, the caller included. */
  readonly threads: number;
  /** Run exports[op](...args, tid, threads) on every thread; returns when all are done. */
  run(op: number, args: number[]): void;
  /** Stop the workers; run() afterwards throws. */
  dispose(): void;
  /** The worker threads (tid 1…), for tests that kill one. */
  readonly workers: readonly Worker[];
}

export function createPool(
  module: WasmModule,
  memory: WasmMemory,
  ops: string[],
  local: KernelFn[],
  threads: number,
  opts: { watchdogMs?: number } = {},
): Pool {
  const watchdogMs = opts.watchdogMs ?? WATCHDOG_MS;
  const sab = new SharedArrayBuffer(CTRL_BYTES);
  const ctrl = new Int32Array(sab);
  const args = new Float64Array(sab, ARGS_BYTE, MAX_ARGS);
  const workers: Worker[] = [];
  const url = new URL("./worker.js", import.meta.url);
  for (let tid = 1; tid < threads; tid++) {
    const w = new Worker(url, { workerData: { module, memory, sab, ops, tid } });
    w.unref();
    workers.push(w);
  }
  const deadline = Date.now() + 10_000;
  for (let r = Atomics.load(ctrl, READY); r < workers.length; r = Atomics.load(ctrl, READY)) {
    if (Date.now() > deadline) {
      for (const w of workers) void w.terminate();
      throw new Error(`wasm backend: only ${r} of ${workers.length} worker threads started`);
    }
    Atomics.wait(ctrl, READY, r, 100);
  }
  ctrl[NTH] = threads;
  let disposed = false;

  function run(op: number, a: number[]): void {
    if (disposed) throw new Error("wasm backend: thread pool used after dispose()");
    if (a.length > MAX_ARGS) throw new Error(`wasm backend: ${a.length} arguments (max ${MAX_ARGS})`);
    for (let i = 0; i < a.length; i++) args[i] = a[i]!;
    ctrl[OP] = op;
    ctrl[NARGS] = a.length;
    ctrl[ERROR] = 0;
    Atomics.store(ctrl, PENDING, workers.length);
    Atomics.add(ctrl, SEQ, 1);
    Atomics.notify(ctrl, SEQ);
    let mainError: unknown = null;
    const t0 = performance.now();
    try {
      local[op]!(...a, 0, threads);
    } catch (err) {
      mainError = err;
    }
    const t1 = performance.now();
    const patience = Math.max(watchdogMs, 20 * (t1 - t0));
    let spin = 0;
    let last = -1;
    let since = t1;
    for (let p = Atomics.load(ctrl, PENDING); p !== 0; p = Atomics.load(ctrl, PENDING)) {
      if (++spin <= SPIN) continue;
      if (p !== last) [last, since] = [p, performance.now()];
      else if (Atomics.load(ctrl, DEAD) !== 0 || performance.now() - since > patience) {
        dispose();
        throw new Error(
          `wasm backend: ${p} of ${workers.length} worker threads ${
            Atomics.load(ctrl, DEAD) !== 0
              ? "exited"
              : `stopped responding (${Math.round(patience / 1000)} s)`
          } during ${ops[op]}; the thread pool is closed (restart the process)`,
        );
      }
      Atomics.wait(ctrl, PENDING, p, 200);
    }
    if (mainError !== null) throw mainError;
    if (Atomics.load(ctrl, ERROR) !== 0) {
      const bytes = new Uint8Array(sab, MSG_BYTE, MSG_LEN);
      const end = bytes.indexOf(0);
      const msg = new TextDecoder().decode(bytes.slice(0, end < 0 ? MSG_LEN : end));
      throw new Error(`wasm backend: worker ${Atomics.load(ctrl, ERROR)} failed in ${ops[op]}: ${msg}`);
    }
  }

  function dispose(): void {
    if (disposed) return;
    disposed = true;
    ctrl[OP] = -1;
    Atomics.add(ctrl, SEQ, 1);
    Atomics.notify(ctrl, SEQ);
    for (const w of workers) void w.terminate();
  }

  return { threads, run, dispose, workers };
}
