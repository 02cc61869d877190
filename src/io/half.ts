// Exact conversions between f32 and the half-precision storage formats bf16 and f16. From f32 they
// round to nearest, ties to even, as PyTorch's `.to(bfloat16)` and `.to(float16)` do: NaN stays NaN
// (quieted), ±Infinity stays, f16 overflow goes to ±Infinity and tiny values to f16 subnormals or signed
// zero. Bottom layer (imports nothing): the kernels, the tensors and the checkpoint readers all use it.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The bf16 bit pattern nearest to x (ties to even). */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x0040) & 0xffff; // NaN: keep sign, quiet it
  const lsb = (bits >>> 16) & 1;
  return ((bits + 0x7fff + lsb) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0]!;
}

/** The f16 bit pattern nearest to x (ties to even). */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return mant ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00;
  const e = exp - 112; // rebias 127 → 15
  if (e >= 31) return sign | 0x7c00;
  if (e >= 1) {
    // Normal: keep 10 mantissa bits, round on the 13 dropped ones; a carry may bump the exponent (to ∞ too).
    const rest = mant & 0x1fff;
    let h = (e << 10) | (mant >>> 13);
    if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
    return sign | h;
  }
  // Subnormal (or zero) in f16: value in units of 2^-24 is (1.mant·2^23) >> (14 - e).
  const shift = 14 - e;
  if (shift >= 25 || exp === 0) return sign; // below half the smallest subnormal (f32 subnormals included)
  const full = mant | 0x800000;
  let h = full >>> shift;
  const rest = full & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && h & 1)) h++;
  return sign | h;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Convert an f32 array to bf16 or f16 bit patterns. */
export function encodeHalf(
  src: Float32Array,
  dtype: "bf16" | "f16",
  out: Uint16Array = new Uint16Array(src.length),
): Uint16Array {
  if (dtype === "bf16") {
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < src.length; i++) {
      const b = bits[i]!;
      out[i] =
        (b & 0x7fffffff) > 0x7f800000
          ? ((b >>> 16) | 0x40) & 0xffff
          : ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
    }
  } else {
    for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i]!);
  }
  return out;
}

/** Convert bf16 or f16 bit patterns to f32. */
export function decodeHalf(
  src: Uint16Array,
  dtype: "bf16" | "f16",
  out: Float32Array = new Float32Array(src.length),
): Float32Array {
  if (dtype === "bf16") {
    const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
    for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  } else {
    // f16 has only 65,536 values: decode through a table built once.
    const table = f16Table();
    for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
  }
  return out;
}

let f16Cache: Float32Array | null = null;
function f16Table(): Float32Array {
  if (!f16Cache) {
    f16Cache = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Cache[h] = f16BitsToF32(h);
  }
  return f16Cache;
}
