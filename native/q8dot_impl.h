// The dot kernel of q8dot.cc, included there twice: once under an AVX2 target (Q8DOT_VNNI 0), once
// under AVX-512 VL + VNNI (Q8DOT_VNNI 1: vpdpbusd on 256-bit vectors replaces vpmaddubsw + vpmaddwd).
// Each copy sits in its own
// namespace, so nothing compiled for AVX-512 can be picked by the linker for the AVX2 path.
// (No #pragma once: included once per ISA.)

// Σ over the 4-byte groups of u·s (u unsigned, s signed bytes) as eight i32 lanes.
inline __m256i dotBytes(__m256i u, __m256i s) {
#if Q8DOT_VNNI
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));  // pairs ≤ 2·255·127
#endif
}

// Lanes [Σ s0, Σ s1, Σ s2, Σ s3 | the same] over each 128-bit half: a 4×4 transpose-and-add per half
// (single-uop unpacks and adds where vphaddd would take several).
inline __m256i gather4(const __m256i* s) {
  const __m256i a = _mm256_add_epi32(_mm256_unpacklo_epi32(s[0], s[1]), _mm256_unpackhi_epi32(s[0], s[1]));
  const __m256i c = _mm256_add_epi32(_mm256_unpacklo_epi32(s[2], s[3]), _mm256_unpackhi_epi32(s[2], s[3]));
  return _mm256_add_epi32(_mm256_unpacklo_epi64(a, c), _mm256_unpackhi_epi64(a, c));
}

// out[i·4 + r] = row i of X (i < MX) · row w[r] (nb whole blocks of F). Per block and row of A the four
// rows' i32 lanes are summed pairwise (two rounds of vphaddd) into one vector, lanes [r0..r3 | r0..r3]
// (bytes 0..15 | 16..31), so one convert and one FMA against the four scales serve all four rows.
template <int F, int MX>
void dotQ8(const XQ& X, const uint8_t* const* w, float* out, int64_t pf) {
  constexpr int64_t BB = blockBytes(F);
  const __m256i m4 = _mm256_set1_epi8(15), eight = _mm256_set1_epi8(8);
  __m256 acc[MX];
  for (int i = 0; i < MX; i++) acc[i] = _mm256_setzero_ps();
  for (int64_t b = 0; b < X.nb; b++) {
    __m256i q[4];
    uint16_t h[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
      const uint8_t* p = w[r] + b * BB;
      if (F == Q8_0 || !(b & 1)) _mm_prefetch((const char*)(p + pf), _MM_HINT_T0);
      h[r] = (uint16_t)(p[0] | (p[1] << 8));
      if (F == Q8_0) {
        q[r] = _mm256_loadu_si256((const __m256i*)(p + 2));
      } else {  // byte j of the vector: value j (low nibbles 0..15, high nibbles 16..31)
        const __m128i t = _mm_loadu_si128((const __m128i*)(p + 2));
        q[r] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), m4);
      }
    }
    const __m128 d4 = _mm_cvtph_ps(_mm_setr_epi16(h[0], h[1], h[2], h[3], 0, 0, 0, 0));
    const __m256 dw = _mm256_set_m128(d4, d4);
#if Q8DOT_VNNI
    // Q8_0 with several rows of A: (x + 128)·w − 128·w, the second term once per row of W (−128·Σw per
    // lane); with one row the sign trick below costs less.
    constexpr bool BIAS = F == Q8_0 && MX > 1;
    __m256i bias[4];
    if (BIAS)
      for (int r = 0; r < 4; r++)
        bias[r] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(dotBytes(_mm256_set1_epi8(1), q[r]), 7));
#endif
#pragma GCC unroll 4
    for (int i = 0; i < MX; i++) {
      const __m256i x = _mm256_loadu_si256((const __m256i*)(X.qs + i * X.kp + b * QK));
      __m256i s[4];
#if Q8DOT_VNNI
      // Q8_0 as above; Q4_0: q·x − 8·x = (q − 8)·x, the −8·x once per row of A. One vpdpbusd per row of W.
      const __m256i xu = _mm256_xor_si256(x, _mm256_set1_epi8(-128));
      const __m256i neg = F == Q4_0 ? _mm256_sub_epi32(_mm256_setzero_si256(), dotBytes(eight, x)) : x;
#pragma GCC unroll 4
      for (int r = 0; r < 4; r++)
        s[r] = BIAS        ? _mm256_dpbusd_epi32(bias[r], xu, q[r])
               : F == Q8_0 ? dotBytes(_mm256_abs_epi8(q[r]), _mm256_sign_epi8(x, q[r]))
                           : _mm256_dpbusd_epi32(neg, q[r], x);
#else
      const __m256i off = F == Q4_0 ? dotBytes(eight, x) : x;  // Q4_0: Σ 8·x per lane
#pragma GCC unroll 4
      for (int r = 0; r < 4; r++)
        // Q8_0: |w|·sign(x, w) = w·x with an unsigned left operand (right for w = −128 too);
        // Q4_0: q·x − 8·x = (q − 8)·x.
        s[r] = F == Q8_0 ? dotBytes(_mm256_abs_epi8(q[r]), _mm256_sign_epi8(x, q[r]))
                         : _mm256_sub_epi32(dotBytes(q[r], x), off);
#endif
      const __m256i s4 = gather4(s);
      const __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(X.d[i * X.nb + b]));
      acc[i] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s4), acc[i]);
    }
  }
  for (int i = 0; i < MX; i++)
    _mm_storeu_ps(out + i * 4, _mm_add_ps(_mm256_castps256_ps128(acc[i]), _mm256_extractf128_ps(acc[i], 1)));
}

// mx (1..4) rows of A against the 4 rows of W.
template <int F>
void dotQ8Rows(const XQ& X, int mx, const uint8_t* const* w, float* out, int64_t pf) {
  switch (mx) {
    case 1: return dotQ8<F, 1>(X, w, out, pf);
    case 2: return dotQ8<F, 2>(X, w, out, pf);
    case 3: return dotQ8<F, 3>(X, w, out, pf);
    default: return dotQ8<F, 4>(X, w, out, pf);
  }
}
