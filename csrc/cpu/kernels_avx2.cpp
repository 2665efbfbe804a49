// AVX2 + FMA versions of kernels.h. This file is compiled with -mavx2 -mfma -mf16c and only
// called after cpu_features() confirmed the instructions exist.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "cpu/kernels.h"

namespace agf {
namespace {

// y[0:n] += sum_k x[k] * W[k, c0:c1]: 64 columns at a time in 8 accumulators, then 32, 16, 8, scalar.
void axpy_cols(const float* x, int n_in, const float* W, int ld, int c0, int c1, float* y) {
    const int n = c1 - c0;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256 a0 = _mm256_loadu_ps(y + i), a1 = _mm256_loadu_ps(y + i + 8), a2 = _mm256_loadu_ps(y + i + 16),
               a3 = _mm256_loadu_ps(y + i + 24), a4 = _mm256_loadu_ps(y + i + 32), a5 = _mm256_loadu_ps(y + i + 40),
               a6 = _mm256_loadu_ps(y + i + 48), a7 = _mm256_loadu_ps(y + i + 56);
        const float* w = W + c0 + i;
        for (int k = 0; k < n_in; ++k, w += ld) {
            const __m256 xk = _mm256_broadcast_ss(x + k);
            a0 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w), a0);
            a1 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w + 8), a1);
            a2 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w + 16), a2);
            a3 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w + 24), a3);
            a4 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w + 32), a4);
            a5 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w + 40), a5);
            a6 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w + 48), a6);
            a7 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w + 56), a7);
        }
        _mm256_storeu_ps(y + i, a0); _mm256_storeu_ps(y + i + 8, a1); _mm256_storeu_ps(y + i + 16, a2);
        _mm256_storeu_ps(y + i + 24, a3); _mm256_storeu_ps(y + i + 32, a4); _mm256_storeu_ps(y + i + 40, a5);
        _mm256_storeu_ps(y + i + 48, a6); _mm256_storeu_ps(y + i + 56, a7);
    }
    if (i + 32 <= n) {
        __m256 a0 = _mm256_loadu_ps(y + i), a1 = _mm256_loadu_ps(y + i + 8), a2 = _mm256_loadu_ps(y + i + 16),
               a3 = _mm256_loadu_ps(y + i + 24);
        const float* w = W + c0 + i;
        for (int k = 0; k < n_in; ++k, w += ld) {
            const __m256 xk = _mm256_broadcast_ss(x + k);
            a0 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w), a0);
            a1 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w + 8), a1);
            a2 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w + 16), a2);
            a3 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w + 24), a3);
        }
        _mm256_storeu_ps(y + i, a0); _mm256_storeu_ps(y + i + 8, a1); _mm256_storeu_ps(y + i + 16, a2);
        _mm256_storeu_ps(y + i + 24, a3);
        i += 32;
    }
    if (i + 16 <= n) {
        __m256 a0 = _mm256_loadu_ps(y + i), a1 = _mm256_loadu_ps(y + i + 8);
        const float* w = W + c0 + i;
        for (int k = 0; k < n_in; ++k, w += ld) {
            const __m256 xk = _mm256_broadcast_ss(x + k);
            a0 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w), a0);
            a1 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w + 8), a1);
        }
        _mm256_storeu_ps(y + i, a0); _mm256_storeu_ps(y + i + 8, a1);
        i += 16;
    }
    for (; i + 8 <= n; i += 8) {
        __m256 a0 = _mm256_loadu_ps(y + i);
        const float* w = W + c0 + i;
        for (int k = 0; k < n_in; ++k, w += ld) a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + k), _mm256_loadu_ps(w), a0);
        _mm256_storeu_ps(y + i, a0);
    }
    for (; i < n; ++i) {
        float acc = y[i];
        const float* w = W + c0 + i;
        for (int k = 0; k < n_in; ++k) acc += x[k] * w[static_cast<int64_t>(k) * ld];
        y[i] = acc;
    }
}

// fp16 weights: 8 halves -> 8 floats with F16C, otherwise as axpy_cols.
inline __m256 ldh(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

void axpy_cols_h(const float* x, int n_in, const uint16_t* W, int ld, int c0, int c1, float* y) {
    const int n = c1 - c0;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256 a0 = _mm256_loadu_ps(y + i), a1 = _mm256_loadu_ps(y + i + 8), a2 = _mm256_loadu_ps(y + i + 16),
               a3 = _mm256_loadu_ps(y + i + 24), a4 = _mm256_loadu_ps(y + i + 32), a5 = _mm256_loadu_ps(y + i + 40),
               a6 = _mm256_loadu_ps(y + i + 48), a7 = _mm256_loadu_ps(y + i + 56);
        const uint16_t* w = W + c0 + i;
        for (int k = 0; k < n_in; ++k, w += ld) {
            const __m256 xk = _mm256_broadcast_ss(x + k);
            a0 = _mm256_fmadd_ps(xk, ldh(w), a0);
            a1 = _mm256_fmadd_ps(xk, ldh(w + 8), a1);
            a2 = _mm256_fmadd_ps(xk, ldh(w + 16), a2);
            a3 = _mm256_fmadd_ps(xk, ldh(w + 24), a3);
            a4 = _mm256_fmadd_ps(xk, ldh(w + 32), a4);
            a5 = _mm256_fmadd_ps(xk, ldh(w + 40), a5);
            a6 = _mm256_fmadd_ps(xk, ldh(w + 48), a6);
            a7 = _mm256_fmadd_ps(xk, ldh(w + 56), a7);
        }
        _mm256_storeu_ps(y + i, a0); _mm256_storeu_ps(y + i + 8, a1); _mm256_storeu_ps(y + i + 16, a2);
        _mm256_storeu_ps(y + i + 24, a3); _mm256_storeu_ps(y + i + 32, a4); _mm256_storeu_ps(y + i + 40, a5);
        _mm256_storeu_ps(y + i + 48, a6); _mm256_storeu_ps(y + i + 56, a7);
    }
    for (; i + 16 <= n; i += 16) {
        __m256 a0 = _mm256_loadu_ps(y + i), a1 = _mm256_loadu_ps(y + i + 8);
        const uint16_t* w = W + c0 + i;
        for (int k = 0; k < n_in; ++k, w += ld) {
            const __m256 xk = _mm256_broadcast_ss(x + k);
            a0 = _mm256_fmadd_ps(xk, ldh(w), a0);
            a1 = _mm256_fmadd_ps(xk, ldh(w + 8), a1);
        }
        _mm256_storeu_ps(y + i, a0); _mm256_storeu_ps(y + i + 8, a1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 a0 = _mm256_loadu_ps(y + i);
        const uint16_t* w = W + c0 + i;
        for (int k = 0; k < n_in; ++k, w += ld) a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + k), ldh(w), a0);
        _mm256_storeu_ps(y + i, a0);
    }
    for (; i < n; ++i) {
        float acc = y[i];
        const uint16_t* w = W + c0 + i;
        for (int k = 0; k < n_in; ++k) acc += x[k] * half_to_float(w[static_cast<int64_t>(k) * ld]);
        y[i] = acc;
    }
}

// exp(x) for 8 floats: range reduction x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial
// (Cephes expf coefficients), relative error ~2 ulp over the clamped range.
inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

inline __m256 sigmoid8(__m256 v) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), v))));
}

// tanh(v) = sign(v) * (1 - e) / (1 + e), e = exp(-2|v|): no cancellation for large |v|; for
// small |v| the absolute error stays ~1e-7.
inline __m256 tanh8(__m256 v) {
    const __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f));
    const __m256 av = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
    const __m256 e = exp8(_mm256_mul_ps(av, _mm256_set1_ps(-2.0f)));
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 t = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
    return _mm256_or_ps(t, sign);
}

inline float sigm(float v) { return 1.0f / (1.0f + std::exp(-v)); }

void gate_ts(const float* a, const float* b, float* z, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(z + i, _mm256_mul_ps(tanh8(_mm256_loadu_ps(a + i)), sigmoid8(_mm256_loadu_ps(b + i))));
    for (; i < n; ++i) z[i] = std::tanh(a[i]) * sigm(b[i]);
}

void gate_st(const float* a, const float* b, float* z, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(z + i, _mm256_mul_ps(sigmoid8(_mm256_loadu_ps(a + i)), tanh8(_mm256_loadu_ps(b + i))));
    for (; i < n; ++i) z[i] = sigm(a[i]) * std::tanh(b[i]);
}

}  // namespace

const Kernels& avx2_kernels() {
    static const Kernels k{"avx2", axpy_cols, axpy_cols_h, gate_ts, gate_st};
    return k;
}

}  // namespace agf
