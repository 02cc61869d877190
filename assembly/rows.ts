// Row-wise kernels of the Llama block: RMSNorm forward and backward, and softmax. The references are
// rmsNorm, rmsNormBackward and softmax in src/backends/js/index.ts. Row sums (mean square, the backward
// dot product, the softmax denominator) accumulate in f64 like the reference; the elementwise parts
// are f32x4. Threads split the rows (rmsNormBackward's dw, a sum over rows, is split by columns
// instead, so no two threads write the same element and the summation order is fixed).
import { expf1, expf4 } from "./vecmath";

@inline
function rowRange(rows: i32, tid: i32, nth: i32, hi: bool): i32 {
  return <i32>((<i64>rows * (hi ? tid + 1 : tid)) / nth);
}

// Σ x[i]² over n floats, in f64.
@inline
function sumSq64(x: usize, n: i32): f64 {
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    const v = v128.load(x + <usize>i * 4);
    const lo = f64x2.promote_low_f32x4(v);
    const hi = f64x2.promote_low_f32x4(f32x4.shuffle(v, v, 2, 3, 2, 3));
    s0 = f64x2.add(s0, f64x2.mul(lo, lo));
    s1 = f64x2.add(s1, f64x2.mul(hi, hi));
  }
  const s = f64x2.add(s0, s1);
  let t = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
  for (let i = n4; i < n; i++) {
    const v = <f64>load<f32>(x + <usize>i * 4);
    t += v * v;
  }
  return t;
}

/** out[r] = x[r]·rstd[r]·w, rstd[r] = 1/sqrt(mean(x[r]²) + eps). */
export function rmsNorm(x: usize, w: usize, out: usize, rstd: usize, rows: i32, dim: i32, eps: f64, tid: i32, nth: i32): void {
  const r1 = rowRange(rows, tid, nth, true);
  const d4 = dim & ~3;
  for (let r = rowRange(rows, tid, nth, false); r < r1; r++) {
    const xr = x + <usize>r * dim * 4;
    const or = out + <usize>r * dim * 4;
    const s = <f32>(1 / Math.sqrt(sumSq64(xr, dim) / dim + eps));
    store<f32>(rstd + <usize>r * 4, s);
    const sv = f32x4.splat(s);
    for (let i = 0; i < d4; i += 4) {
      const o = <usize>i * 4;
      v128.store(or + o, f32x4.mul(f32x4.mul(v128.load(xr + o), sv), v128.load(w + o)));
    }
    for (let i = d4; i < dim; i++) {
      const o = <usize>i * 4;
      store<f32>(or + o, load<f32>(xr + o) * s * load<f32>(w + o));
    }
  }
}

/**
 * dx[r] = s·(w∘dy[r]) − (s³/dim)·(Σ w∘dy[r]∘x[r])·x[r] with s = rstd[r] (written, not accumulated);
 * dw += Σ_r dy[r]∘x[r]·s (skipped when dw is 0). dx must not alias dy or x.
 */
export function rmsNormBackward(
  dy: usize, x: usize, w: usize, rstd: usize, dx: usize, dw: usize, rows: i32, dim: i32, tid: i32, nth: i32,
): void {
  const d4 = dim & ~3;
  const r1 = rowRange(rows, tid, nth, true);
  for (let r = rowRange(rows, tid, nth, false); r < r1; r++) {
    const off = <usize>r * dim * 4;
    const s = load<f32>(rstd + <usize>r * 4);
    let a0 = f64x2.splat(0), a1 = f64x2.splat(0);
    for (let i = 0; i < d4; i += 4) {
      const o = <usize>i * 4;
      const t = f32x4.mul(v128.load(w + o), v128.load(dy + off + o));
      const xv = v128.load(x + off + o);
      a0 = f64x2.add(a0, f64x2.mul(f64x2.promote_low_f32x4(t), f64x2.promote_low_f32x4(xv)));
      a1 = f64x2.add(
        a1,
        f64x2.mul(f64x2.promote_low_f32x4(f32x4.shuffle(t, t, 2, 3, 2, 3)), f64x2.promote_low_f32x4(f32x4.shuffle(xv, xv, 2, 3, 2, 3))),
      );
    }
    const a = f64x2.add(a0, a1);
    let dot = f64x2.extract_lane(a, 0) + f64x2.extract_lane(a, 1);
    for (let i = d4; i < dim; i++) {
      const o = <usize>i * 4;
      dot += <f64>(load<f32>(w + o) * load<f32>(dy + off + o)) * <f64>load<f32>(x + off + o);
    }
    const c = <f32>((<f64>s * s * s * dot) / dim);
    const sv = f32x4.splat(s);
    const cv = f32x4.splat(c);
    for (let i = 0; i < d4; i += 4) {
      const o = <usize>i * 4;
      const g = f32x4.mul(f32x4.mul(sv, v128.load(w + o)), v128.load(dy + off + o));
      v128.store(dx + off + o, f32x4.sub(g, f32x4.mul(cv, v128.load(x + off + o))));
    }
    for (let i = d4; i < dim; i++) {
      const o = <usize>i * 4;
      store<f32>(dx + off + o, s * load<f32>(w + o) * load<f32>(dy + off + o) - c * load<f32>(x + off + o));
    }
  }
  if (dw == 0) return;
  // dw: this thread's columns (4-aligned ranges), summed over all rows in order.
  const units = (dim + 3) >> 2;
  const c0 = min(dim, rowRange(units, tid, nth, false) * 4);
  const c1 = min(dim, rowRange(units, tid, nth, true) * 4);
  const c4 = c0 + ((c1 - c0) & ~3);
  for (let r = 0; r < rows; r++) {
    const off = <usize>r * dim * 4;
    const s = load<f32>(rstd + <usize>r * 4);
    const sv = f32x4.splat(s);
    for (let i = c0; i < c4; i += 4) {
      const o = <usize>i * 4;
      const t = f32x4.mul(f32x4.mul(v128.load(dy + off + o), v128.load(x + off + o)), sv);
      v128.store(dw + o, f32x4.add(v128.load(dw + o), t));
    }
    for (let i = c4; i < c1; i++) {
      const o = <usize>i * 4;
      store<f32>(dw + o, load<f32>(dw + o) + load<f32>(dy + off + o) * load<f32>(x + off + o) * s);
    }
  }
}

/** Row-wise softmax of rows×cols (out may be x). */
export function softmax(x: usize, out: usize, rows: i32, cols: i32, tid: i32, nth: i32): void {
  const c4 = cols & ~3;
  const r1 = rowRange(rows, tid, nth, true);
  for (let r = rowRange(rows, tid, nth, false); r < r1; r++) {
    const xr = x + <usize>r * cols * 4;
    const or = out + <usize>r * cols * 4;
    let mv = f32x4.splat(-Infinity);
    for (let i = 0; i < c4; i += 4) mv = f32x4.max(mv, v128.load(xr + <usize>i * 4));
    let mx = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
    for (let i = c4; i < cols; i++) mx = max(mx, load<f32>(xr + <usize>i * 4));
    const m4 = f32x4.splat(mx);
    let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
    for (let i = 0; i < c4; i += 4) {
      const o = <usize>i * 4;
      const e = expf4(f32x4.sub(v128.load(xr + o), m4));
      v128.store(or + o, e);
      s0 = f64x2.add(s0, f64x2.promote_low_f32x4(e));
      s1 = f64x2.add(s1, f64x2.promote_low_f32x4(f32x4.shuffle(e, e, 2, 3, 2, 3)));
    }
    const sv = f64x2.add(s0, s1);
    let sum = f64x2.extract_lane(sv, 0) + f64x2.extract_lane(sv, 1);
    for (let i = c4; i < cols; i++) {
      const o = <usize>i * 4;
      const e = expf1(load<f32>(xr + o) - mx);
      store<f32>(or + o, e);
      sum += e;
    }
    const inv = <f32>(1 / sum);
    const iv = f32x4.splat(inv);
    for (let i = 0; i < c4; i += 4) {
      const o = <usize>i * 4;
      v128.store(or + o, f32x4.mul(v128.load(or + o), iv));
    }
    for (let i = c4; i < cols; i++) {
      const o = <usize>i * 4;
      store<f32>(or + o, load<f32>(or + o) * inv);
    }
  }
}
