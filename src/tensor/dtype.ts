// Storage dtypes. herd computes in f32; weights and checkpoints may be stored in bf16 or f16, converted
// exactly by src/io/half.ts (re-exported here).

export type DType = "f32" | "bf16" | "f16";

export const dtypeBytes: Record<DType, number> = { f32: 4, bf16: 2, f16: 2 };

export {
  bf16BitsToF32,
  decodeHalf,
  encodeHalf,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
} from "../io/half.js";
