// Elementwise kernels over n floats: add, mul, scale, axpy, the f64 reductions sum and sumSquares, the
// SwiGLU product forward and backward, and the fused AdamW step. References: the same-named kernels in
// src/backends/js/index.ts. Threads split [0, n) into ranges aligned to 16 floats (one cache line), so
// no two threads write the same line; reductions leave one f64 partial per thread at part + 8·tid.
import { ones4, sigmoid1, sigmoid4 } from "./vecmath";

// Start of thread t's range of n elements.
@inline
function split(n: i32, t: i32, nth: i32): i32 {
  return t >= nth ? n : min(n, <i32>((<i64>n * t) / nth) & ~15);
}

export function add(a: usize, b: usize, out: usize, n: i32, tid: i32, nth: i32): void {
  const i1 = split(n, tid + 1, nth);
  let i = split(n, tid, nth);
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i * 4;
    v128.store(out + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < i1; i++) store<f32>(out + <usize>i * 4, load<f32>(a + <usize>i * 4) + load<f32>(b + <usize>i * 4));
}

export function mul(a: usize, b: usize, out: usize, n: i32, tid: i32, nth: i32): void {
  const i1 = split(n, tid + 1, nth);
  let i = split(n, tid, nth);
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i * 4;
    v128.store(out + o, f32x4.mul(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < i1; i++) store<f32>(out + <usize>i * 4, load<f32>(a + <usize>i * 4) * load<f32>(b + <usize>i * 4));
}

/** out = a·s (out may be a). */
export function scale(a: usize, s: f32, out: usize, n: i32, tid: i32, nth: i32): void {
  const i1 = split(n, tid + 1, nth);
  const sv = f32x4.splat(s);
  let i = split(n, tid, nth);
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i * 4;
    v128.store(out + o, f32x4.mul(v128.load(a + o), sv));
  }
  for (; i < i1; i++) store<f32>(out + <usize>i * 4, load<f32>(a + <usize>i * 4) * s);
}

/** acc += a·s. */
export function axpy(acc: usize, a: usize, s: f32, n: i32, tid: i32, nth: i32): void {
  const i1 = split(n, tid + 1, nth);
  const sv = f32x4.splat(s);
  let i = split(n, tid, nth);
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i * 4;
    v128.store(acc + o, f32x4.add(v128.load(acc + o), f32x4.mul(v128.load(a + o), sv)));
  }
  for (; i < i1; i++) store<f32>(acc + <usize>i * 4, load<f32>(acc + <usize>i * 4) + load<f32>(a + <usize>i * 4) * s);
}

// Σ a[i] (squares: Σ a[i]²) over this thread's range in f64, stored at part + 8·tid.
function reduce(a: usize, n: i32, squares: bool, part: usize, tid: i32, nth: i32): void {
  const i1 = split(n, tid + 1, nth);
  let i = split(n, tid, nth);
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
  for (; i + 4 <= i1; i += 4) {
    const v = v128.load(a + <usize>i * 4);
    let lo = f64x2.promote_low_f32x4(v);
    let hi = f64x2.promote_low_f32x4(f32x4.shuffle(v, v, 2, 3, 2, 3));
    if (squares) {
      lo = f64x2.mul(lo, lo);
      hi = f64x2.mul(hi, hi);
    }
    s0 = f64x2.add(s0, lo);
    s1 = f64x2.add(s1, hi);
  }
  const s = f64x2.add(s0, s1);
  let t = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
  for (; i < i1; i++) {
    const v = <f64>load<f32>(a + <usize>i * 4);
    t += squares ? v * v : v;
  }
  store<f64>(part + <usize>tid * 8, t);
}

export function sum(a: usize, n: i32, part: usize, tid: i32, nth: i32): void {
  reduce(a, n, false, part, tid, nth);
}

export function sumSquares(a: usize, n: i32, part: usize, tid: i32, nth: i32): void {
  reduce(a, n, true, part, tid, nth);
}

/** out = silu(gate)·up = gate·σ(gate)·up. */
export function swiglu(gate: usize, up: usize, out: usize, n: i32, tid: i32, nth: i32): void {
  const i1 = split(n, tid + 1, nth);
  let i = split(n, tid, nth);
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i * 4;
    const g = v128.load(gate + o);
    v128.store(out + o, f32x4.mul(f32x4.mul(g, sigmoid4(g)), v128.load(up + o)));
  }
  for (; i < i1; i++) {
    const o = <usize>i * 4;
    const g = load<f32>(gate + o);
    store<f32>(out + o, g * sigmoid1(g) * load<f32>(up + o));
  }
}

/** dup = dout·g·σ(g); dgate = dout·up·σ(g)·(1 + g·(1 − σ(g))) (written, not accumulated). */
export function swigluBackward(gate: usize, up: usize, dout: usize, dgate: usize, dup: usize, n: i32, tid: i32, nth: i32): void {
  const i1 = split(n, tid + 1, nth);
  let i = split(n, tid, nth);
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i * 4;
    const one = ones4();
    const g = v128.load(gate + o);
    const d = v128.load(dout + o);
    const s = sigmoid4(g);
    const dg = f32x4.mul(f32x4.mul(f32x4.mul(d, v128.load(up + o)), s), f32x4.add(one, f32x4.mul(g, f32x4.sub(one, s))));
    v128.store(dup + o, f32x4.mul(f32x4.mul(d, g), s));
    v128.store(dgate + o, dg);
  }
  for (; i < i1; i++) {
    const o = <usize>i * 4;
    const g = load<f32>(gate + o);
    const d = load<f32>(dout + o);
    const s = sigmoid1(g);
    const dg = d * load<f32>(up + o) * s * (1 + g * (1 - s));
    store<f32>(dup + o, d * g * s);
    store<f32>(dgate + o, dg);
  }
}

// AdamW in f64, the reference's arithmetic operation for operation (so results match it bit for bit):
// m' = β1·m + (1−β1)·g; v' = β2·v + (1−β2)·g² (both rounded to f32 and stored);
// p' = p·decay − lr·(m'/bc1) / (sqrt(v'/bc2) + eps). Two elements per step in f64x2, a scalar tail.

/** One AdamW step over this thread's range (see AdamWArgs in src/backends/backend.ts). */
export function adamw(
  param: usize, grad: usize, m: usize, v: usize, n: i32, lr: f64, beta1: f64, beta2: f64, eps: f64,
  decay: f64, bc1: f64, bc2: f64, tid: i32, nth: i32,
): void {
  const i1 = split(n, tid + 1, nth);
  const c1 = 1 - beta1;
  const c2 = 1 - beta2;
  const b1v = f64x2.splat(beta1), c1v = f64x2.splat(c1), b2v = f64x2.splat(beta2), c2v = f64x2.splat(c2);
  const dv = f64x2.splat(decay), lv = f64x2.splat(lr), e1 = f64x2.splat(bc1), e2 = f64x2.splat(bc2), ev = f64x2.splat(eps);
  let i = split(n, tid, nth);
  for (; i + 2 <= i1; i += 2) {
    const o = <usize>i * 4;
    const g = f64x2.promote_low_f32x4(v128.load64_zero(grad + o));
    const p = f64x2.promote_low_f32x4(v128.load64_zero(param + o));
    const mo = f64x2.promote_low_f32x4(v128.load64_zero(m + o));
    const vo = f64x2.promote_low_f32x4(v128.load64_zero(v + o));
    const mf = f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(b1v, mo), f64x2.mul(c1v, g)));
    const vf = f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(b2v, vo), f64x2.mul(f64x2.mul(c2v, g), g)));
    const mn = f64x2.promote_low_f32x4(mf);
    const vn = f64x2.promote_low_f32x4(vf);
    const step = f64x2.div(f64x2.mul(lv, f64x2.div(mn, e1)), f64x2.add(f64x2.sqrt(f64x2.div(vn, e2)), ev));
    v128.store64_lane(m + o, mf, 0);
    v128.store64_lane(v + o, vf, 0);
    v128.store64_lane(param + o, f32x4.demote_f64x2_zero(f64x2.sub(f64x2.mul(p, dv), step)), 0);
  }
  for (; i < i1; i++) {
    const o = <usize>i * 4;
    const g = <f64>load<f32>(grad + o);
    const mn = <f64><f32>(beta1 * <f64>load<f32>(m + o) + c1 * g);
    const vn = <f64><f32>(beta2 * <f64>load<f32>(v + o) + c2 * g * g);
    store<f32>(m + o, <f32>mn);
    store<f32>(v + o, <f32>vn);
    store<f32>(param + o, <f32>(<f64>load<f32>(param + o) * decay - (lr * (mn / bc1)) / (Math.sqrt(vn / bc2) + eps)));
  }
}
