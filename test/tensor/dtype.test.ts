// bf16/f16 conversions against hand-checked bit patterns: rounding to nearest even, NaN, infinities,
// overflow, subnormals and signed zero.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  bf16BitsToF32,
  decodeHalf,
  encodeHalf,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
} from "../../src/tensor/dtype.js";

const fromBits = (b: number) => new Float32Array(new Uint32Array([b]).buffer)[0]!;

test("bf16: exact values and round-to-nearest-even", () => {
  assert.equal(f32ToBf16Bits(1), 0x3f80);
  assert.equal(f32ToBf16Bits(-2), 0xc000);
  assert.equal(f32ToBf16Bits(0), 0x0000);
  assert.equal(f32ToBf16Bits(-0), 0x8000);
  assert.equal(f32ToBf16Bits(3.140625), 0x4049); // exactly representable
  // 1 + 2^-8 is exactly half-way between 0x3f80 and 0x3f81: ties to even → 0x3f80.
  assert.equal(f32ToBf16Bits(fromBits(0x3f808000)), 0x3f80);
  // 0x3f818000 is half-way between 0x3f81 and 0x3f82: ties to even → 0x3f82.
  assert.equal(f32ToBf16Bits(fromBits(0x3f818000)), 0x3f82);
  // Just above half-way rounds up, just below rounds down.
  assert.equal(f32ToBf16Bits(fromBits(0x3f808001)), 0x3f81);
  assert.equal(f32ToBf16Bits(fromBits(0x3f807fff)), 0x3f80);
  // π = 0x40490fdb → 0x4049.
  assert.equal(f32ToBf16Bits(Math.PI), 0x4049);
  // The largest finite f32 rounds up to +Infinity in bf16.
  assert.equal(f32ToBf16Bits(fromBits(0x7f7fffff)), 0x7f80);
});

test("bf16: infinities, NaN and subnormals", () => {
  assert.equal(f32ToBf16Bits(Number.POSITIVE_INFINITY), 0x7f80);
  assert.equal(f32ToBf16Bits(Number.NEGATIVE_INFINITY), 0xff80);
  const nan = f32ToBf16Bits(Number.NaN);
  assert.equal(nan & 0x7f80, 0x7f80);
  assert.ok((nan & 0x7f) !== 0, "NaN keeps a non-zero mantissa");
  // A signalling NaN whose payload sits in the low 16 bits must not become Infinity.
  assert.equal(f32ToBf16Bits(fromBits(0x7f800001)), 0x7fc0);
  // f32 subnormal 0x00010000 is exactly bf16 0x0001; 0x00008000 ties to even → 0.
  assert.equal(f32ToBf16Bits(fromBits(0x00010000)), 0x0001);
  assert.equal(f32ToBf16Bits(fromBits(0x00008000)), 0x0000);
  assert.equal(f32ToBf16Bits(fromBits(0x00018000)), 0x0002);
  assert.equal(bf16BitsToF32(0x3f80), 1);
  assert.equal(bf16BitsToF32(0xff80), Number.NEGATIVE_INFINITY);
  assert.ok(Number.isNaN(bf16BitsToF32(0x7fc0)));
  assert.equal(bf16BitsToF32(0x0001), fromBits(0x00010000));
});

test("f16: exact values and round-to-nearest-even", () => {
  assert.equal(f32ToF16Bits(1), 0x3c00);
  assert.equal(f32ToF16Bits(-2), 0xc000);
  assert.equal(f32ToF16Bits(65504), 0x7bff); // largest finite
  assert.equal(f32ToF16Bits(0.1), 0x2e66);
  assert.equal(f32ToF16Bits(-0), 0x8000);
  // 1 + 2^-11 is half-way between 0x3c00 and 0x3c01: ties to even → 0x3c00; 1 + 3·2^-11 → 0x3c02.
  assert.equal(f32ToF16Bits(1 + 2 ** -11), 0x3c00);
  assert.equal(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02);
  // 65520 is half-way between 65504 and 65536 (= overflow): ties to even → +Infinity; 65519 stays finite.
  assert.equal(f32ToF16Bits(65520), 0x7c00);
  assert.equal(f32ToF16Bits(65519), 0x7bff);
  assert.equal(f32ToF16Bits(1e6), 0x7c00);
  assert.equal(f32ToF16Bits(-1e6), 0xfc00);
});

test("f16: subnormals, underflow, infinities and NaN", () => {
  assert.equal(f32ToF16Bits(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(f32ToF16Bits(2 ** -14), 0x0400); // smallest normal
  assert.equal(f32ToF16Bits(2 ** -14 - 2 ** -24), 0x03ff); // largest subnormal
  assert.equal(f32ToF16Bits(2 ** -25), 0x0000); // half the smallest subnormal: ties to even → 0
  assert.equal(f32ToF16Bits(2 ** -25 + 2 ** -35), 0x0001); // just above half → rounds up
  assert.equal(f32ToF16Bits(3 * 2 ** -25), 0x0002); // 1.5 units: ties to even → 2
  assert.equal(f32ToF16Bits(-(2 ** -30)), 0x8000); // underflow keeps the sign
  assert.equal(f32ToF16Bits(Number.POSITIVE_INFINITY), 0x7c00);
  assert.equal(f32ToF16Bits(Number.NEGATIVE_INFINITY), 0xfc00);
  const nan = f32ToF16Bits(Number.NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.ok((nan & 0x3ff) !== 0);
  assert.equal(f16BitsToF32(0x0001), 2 ** -24);
  assert.equal(f16BitsToF32(0x03ff), 2 ** -14 - 2 ** -24);
  assert.equal(f16BitsToF32(0x7bff), 65504);
  assert.equal(f16BitsToF32(0xfc00), Number.NEGATIVE_INFINITY);
  assert.ok(Number.isNaN(f16BitsToF32(0x7e00)));
  assert.ok(Object.is(f16BitsToF32(0x8000), -0));
});

test("every f16 and bf16 bit pattern round-trips exactly", () => {
  const all = new Uint16Array(65536);
  for (let i = 0; i < 65536; i++) all[i] = i;
  for (const dtype of ["f16", "bf16"] as const) {
    const f = decodeHalf(all, dtype);
    const back = encodeHalf(f, dtype);
    for (let i = 0; i < 65536; i++) {
      if (Number.isNaN(f[i]!)) continue; // NaN payloads are quieted
      assert.equal(back[i], i, `${dtype} pattern 0x${i.toString(16)}`);
    }
  }
});

test("array conversion matches the scalar one", () => {
  const xs = new Float32Array([
    0,
    -0,
    1,
    -1.5,
    3.3,
    1e-7,
    7e4,
    -6e-8,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    65520,
    1 + 2 ** -11,
  ]);
  const b = encodeHalf(xs, "bf16");
  const h = encodeHalf(xs, "f16");
  xs.forEach((x, i) => {
    assert.equal(b[i], f32ToBf16Bits(x));
    assert.equal(h[i], f32ToF16Bits(x));
  });
});
