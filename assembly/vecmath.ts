// Vectorised exp and sigmoid on f32x4 for softmax and SwiGLU. The reference is Math.exp (in f64); this
// is the Cephes expf scheme, accurate to ~1e-7 relative (a few ulp) over the whole f32 range:
//   exp(x) = 2^n · e^r,  n = round(x·log2 e),  r = x − n·ln 2 (ln 2 split in two for exactness),
//   e^r ≈ 1 + r + r²·P(r), P of degree 5 on |r| ≤ ln2/2, evaluated in Estrin's form (three short
//   chains instead of one long Horner chain, so consecutive vectors overlap in the pipeline),
//   2^n applied as two factors 2^(n>>1)·2^(n−(n>>1)) built in the exponent bits, so results that
//   overflow become +Inf and results below the normal range degrade gradually to subnormals and 0.
// Inputs are clamped to [-104, 89] first (beyond that the result is already 0 or +Inf); NaN stays NaN.
// n is rounded with the 1.5·2^23 trick, which also leaves n as an integer in the low mantissa bits.
//
// Speed notes, from V8's generated code: every v128.const inside a loop is rebuilt each iteration
// through a general register (3 instructions, one GPR→XMM move), and f32x4.min/max carry NaN fix-ups;
// so the constants live in a table in memory (each use is one broadcast load) and the clamp uses
// pmin/pmax (one instruction each, and NaN still propagates through them from the first operand).

const LO: i32 = 0;
const HI: i32 = 4;
const MAGIC: i32 = 8;
const LOG2E: i32 = 12;
const LN2_HI: i32 = 16;
const LN2_LO: i32 = 20;
const P0: i32 = 24;
const P1: i32 = 28;
const P2: i32 = 32;
const P3: i32 = 36;
const P4: i32 = 40;
const P5: i32 = 44;
const ONE: i32 = 48;
const BIAS: i32 = 52; // i32 127
const K = memory.data<f32>([
  -104.0, 89.0, 12582912.0, 1.44269504088896341, 0.693359375, -2.12194440e-4,
  5.0000001201e-1, 1.6666665459e-1, 4.1665795894e-2, 8.3334519073e-3, 1.3981999507e-3, 1.9875691500e-4,
  1.0, 1.77964905e-43, // the bit pattern of the integer 127
]);

@inline
function k(off: i32): v128 {
  return v128.load32_splat(K + <usize>off);
}

@inline
export function expf4(x: v128): v128 {
  x = f32x4.pmin(f32x4.pmax(x, k(LO)), k(HI));
  const magic = k(MAGIC);
  const t = f32x4.add(f32x4.mul(x, k(LOG2E)), magic);
  const n = f32x4.sub(t, magic);
  const ni = i32x4.sub(t, magic);
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(n, k(LN2_HI))), f32x4.mul(n, k(LN2_LO)));
  const r2 = f32x4.mul(r, r);
  const r4 = f32x4.mul(r2, r2);
  const q0 = f32x4.add(f32x4.mul(k(P1), r), k(P0));
  const q1 = f32x4.add(f32x4.mul(k(P3), r), k(P2));
  const q2 = f32x4.add(f32x4.mul(k(P5), r), k(P4));
  const p = f32x4.add(f32x4.add(q0, f32x4.mul(q1, r2)), f32x4.mul(q2, r4));
  const e = f32x4.add(f32x4.add(f32x4.mul(p, r2), r), k(ONE));
  const bias = k(BIAS);
  const h = i32x4.shr_s(ni, 1);
  const s1 = i32x4.shl(i32x4.add(h, bias), 23);
  const s2 = i32x4.shl(i32x4.add(i32x4.sub(ni, h), bias), 23);
  return f32x4.mul(f32x4.mul(e, s1), s2);
}

/** 1 / (1 + exp(-x)). */
@inline
export function sigmoid4(x: v128): v128 {
  const one = k(ONE);
  return f32x4.div(one, f32x4.add(one, expf4(f32x4.neg(x))));
}

/** A splat of 1.0 from the table (cheaper inside loops than a v128 constant). */
@inline
export function ones4(): v128 {
  return k(ONE);
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
