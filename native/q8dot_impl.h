// The dot kernel of q8dot.cc, included there twice: once under an AVX2 target (Q8DOT_VNNI 0), once
// under AVX-512 VL + VNNI (Q8DOT_VNNI 1: vpdpbusd on 256-bit vectors replaces vpmaddubsw + vpmaddwd, and
// the 32 vector registers hold four rows of A against four rows of W). Each copy sits in its own
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

// out[i·4 + r] = row i of X (i < MX) · row w[r] (nb whole blocks of F).
template <int F, int MX>
void dotQ8(const XQ& X, const uint8_t* const* w, float* out, int64_t pf) {
  constexpr int64_t BB = blockBytes(F);
  const __m256i m4 = _mm256_set1_epi8(15), eight = _mm256_set1_epi8(8);
  __m256 acc[MX][4];
  for (int i = 0; i < MX; i++)
    for (int r = 0; r < 4; r++) acc[i][r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < X.nb; b++) {
    __m256i q[4];
    float dw[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
      const uint8_t* p = w[r] + b * BB;
      if (F == Q8_0 || !(b & 1)) _mm_prefetch((const char*)(p + pf), _MM_HINT_T0);
      dw[r] = _cvtsh_ss((uint16_t)(p[0] | (p[1] << 8)));
      if (F == Q8_0) {
        q[r] = _mm256_loadu_si256((const __m256i*)(p + 2));
      } else {  // byte j of the vector: value j (low nibbles 0..15, high nibbles 16..31)
        const __m128i t = _mm_loadu_si128((const __m128i*)(p + 2));
        q[r] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), m4);
      }
    }
#pragma GCC unroll 4
    for (int i = 0; i < MX; i++) {
      const __m256i x = _mm256_loadu_si256((const __m256i*)(X.qs + i * X.kp + b * QK));
      const float dx = X.d[i * X.nb + b];
      const __m256i off = F == Q4_0 ? dotBytes(eight, x) : x;  // Q4_0: Σ 8·x per lane
#pragma GCC unroll 4
      for (int r = 0; r < 4; r++) {
        // Q8_0: |w|·sign(x, w) = w·x with an unsigned left operand (right for w = −128 too);
        // Q4_0: q·x − 8·x = (q − 8)·x.
        const __m256i s = F == Q8_0 ? dotBytes(_mm256_abs_epi8(q[r]), _mm256_sign_epi8(x, q[r]))
                                    : _mm256_sub_epi32(dotBytes(q[r], x), off);
        acc[i][r] = _mm256_fmadd_ps(_mm256_set1_ps(dw[r] * dx), _mm256_cvtepi32_ps(s), acc[i][r]);
      }
    }
  }
  for (int i = 0; i < MX; i++)
    for (int r = 0; r < 4; r++) out[i * 4 + r] = hsum256(acc[i][r]);
}

// mx (1..MAXMX) rows of A against the 4 rows of W.
constexpr int MAXMX = Q8DOT_VNNI ? 4 : 2;
template <int F>
void dotQ8Rows(const XQ& X, int mx, const uint8_t* const* w, float* out, int64_t pf) {
  switch (mx) {
    case 1: return dotQ8<F, 1>(X, w, out, pf);
#if Q8DOT_VNNI
    case 2: return dotQ8<F, 2>(X, w, out, pf);
    case 3: return dotQ8<F, 3>(X, w, out, pf);
    default: return dotQ8<F, 4>(X, w, out, pf);
#else
    default: return dotQ8<F, 2>(X, w, out, pf);
#endif
  }
}
