// Vectorised exp and sigmoid on f32x4 for softmax and SwiGLU. The reference is Math.exp (in f64); this
// is the Cephes expf scheme, accurate to a few ulp (≈ 3e-7 relative) over the whole f32 range:
//   exp(x) = 2^n · e^r,  n = round(x·log2 e),  r = x − n·ln 2 (ln 2 split in two for exactness),
//   e^r ≈ 1 + r + r²·P(r) with a degree-5 polynomial on |r| ≤ ln2/2,
//   2^n applied as two factors 2^(n>>1)·2^(n−(n>>1)) built in the exponent bits, so results that
//   overflow become +Inf and results below the normal range degrade gradually to subnormals and 0.
// Inputs are clamped to [-104, 89] first (beyond that the result is already 0 or +Inf); NaN stays NaN.

@inline
export function expf4(x: v128): v128 {
  x = f32x4.min(f32x4.max(x, f32x4.splat(-104.0)), f32x4.splat(89.0));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  p = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1.0));
  const ni = i32x4.trunc_sat_f32x4_s(n);
  const h = i32x4.shr_s(ni, 1);
  const s1 = i32x4.shl(i32x4.add(h, i32x4.splat(127)), 23);
  const s2 = i32x4.shl(i32x4.add(i32x4.sub(ni, h), i32x4.splat(127)), 23);
  return f32x4.mul(f32x4.mul(p, s1), s2);
}

/** 1 / (1 + exp(-x)). */
@inline
export function sigmoid4(x: v128): v128 {
  const one = f32x4.splat(1.0);
  return f32x4.div(one, f32x4.add(one, expf4(f32x4.neg(x))));
}

/** Scalar exp with the same arithmetic (for loop tails, so every element gets identical results). */
@inline
export function expf1(x: f32): f32 {
  return f32x4.extract_lane(expf4(f32x4.splat(x)), 0);
}

@inline
export function sigmoid1(x: f32): f32 {
  return f32x4.extract_lane(sigmoid4(f32x4.splat(x)), 0);
}
