// RoPE inverse frequencies ω_i = θ^(−2i/h_d), i < h_d/2, with the Llama 3.1 "llama3" scaling bands
// (spec §2.5–2.6): wavelengths λ_i = 2π/ω_i shorter than L₀/β are kept, longer than L₀/α divided by the
// factor s, and in between blended: γ = (L₀/λ_i − α)/(β − α), ω' = (1 − γ)·ω/s + γ·ω.
// Computed in f64 and rounded once to f32 (the reference codes work in f32; the two agree to an ulp or
// two, far inside the parity tolerances). The rotation itself is the engine's `rope` op (split halves).
import type { LlamaConfig, RopeScaling } from "./config.js";

/** Unscaled ω_i = θ^(−2i/h_d), as f64. */
export function baseInvFreq(headDim: number, theta: number): Float64Array {
  const out = new Float64Array(headDim / 2);
  for (let i = 0; i < out.length; i++) out[i] = 1 / theta ** ((2 * i) / headDim);
  return out;
}

/** Apply the llama3 frequency bands to one base frequency. */
export function scaleFrequency(w: number, s: RopeScaling): number {
  const wavelen = (2 * Math.PI) / w;
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  if (wavelen < highWavelen) return w;
  if (wavelen > lowWavelen) return w / s.factor;
  const gamma =
    (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
  return (1 - gamma) * (w / s.factor) + gamma * w;
}

/** The f32 inverse frequencies the model rotates by. */
export function ropeInvFreq(c: Pick<LlamaConfig, "headDim" | "ropeTheta" | "ropeScaling">): Float32Array {
  const base = baseInvFreq(c.headDim, c.ropeTheta);
  const out = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++)
    out[i] = c.ropeScaling ? scaleFrequency(base[i]!, c.ropeScaling) : base[i]!;
  return out;
}
