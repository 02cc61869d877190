// A clock probe for the benchmark (bench/engine.ts), not a kernel: `iters` rounds of 8 dependent 32-bit
// integer multiplies. Each waits for the previous one, so the loop runs at one multiply per imul
// latency (3 cycles on every Zen core, and on Intel cores since Sandy Bridge): the core clock in Hz is
// iters · 8 · 3 / seconds. The benchmark derives the f32 peak from that clock.
export function clockProbe(iters: i32, x: i32, y: i32): i32 {
  for (let i = 0; i < iters; i++) {
    x = x * y;
    x = x * y;
    x = x * y;
    x = x * y;
    x = x * y;
    x = x * y;
    x = x * y;
    x = x * y;
  }
  return x;
}
