// The bf16 product (bf16.h) on AVX512-BF16: register tiles of up to 6 rows x 4 panels (64
// columns), 24 zmm accumulators as named variables (an accumulator array is kept on the stack
// by GCC, see kernels_avx2.cpp tile16). Per pair of k: 4 panel rows loaded, one broadcast of each
// X row's pair, 24 vdpbf16ps (768 multiply-adds). Compiled with -mavx512f -mavx512bf16 where the
// compiler has them (setup.py), called only after bf16::native_available().
#include "cpu/bf16.h"

#include <algorithm>

#if defined(__AVX512BF16__)
#include <immintrin.h>

namespace agf {
namespace bf16 {
namespace {

inline __m512bh as_bh(__m512i v) { return (__m512bh)v; }

// MR rows x NP panels; the last panel stores (and loads) only the columns in mlast
template <int MR, int NP>
inline void tile(const uint32_t* X, int64_t ldx, int K2, const uint32_t* w, int64_t ps, const float* bias, bool set,
                 float* Y, int64_t ldy, __mmask16 mlast) {
    const __m512 z = _mm512_setzero_ps();
    auto mk = [&](int q) -> __mmask16 { return q == NP - 1 ? mlast : static_cast<__mmask16>(0xffff); };
    auto init = [&](int b, int q) -> __m512 {
        if (set) return bias ? _mm512_maskz_loadu_ps(mk(q), bias + 16 * q) : z;
        return _mm512_maskz_loadu_ps(mk(q), Y + b * ldy + 16 * q);
    };
#define AGF_INIT(b)                                       \
    __m512 c##b##0 = MR > b && NP > 0 ? init(b, 0) : z;   \
    __m512 c##b##1 = MR > b && NP > 1 ? init(b, 1) : z;   \
    __m512 c##b##2 = MR > b && NP > 2 ? init(b, 2) : z;   \
    __m512 c##b##3 = MR > b && NP > 3 ? init(b, 3) : z;
    AGF_INIT(0) AGF_INIT(1) AGF_INIT(2) AGF_INIT(3) AGF_INIT(4) AGF_INIT(5)
#undef AGF_INIT
    for (int j = 0; j < K2; ++j) {
        const uint32_t* wj = w + static_cast<int64_t>(j) * 16;
        const __m512i zi = _mm512_setzero_si512();
        const __m512bh w0 = as_bh(NP > 0 ? _mm512_loadu_si512(wj) : zi);
        const __m512bh w1 = as_bh(NP > 1 ? _mm512_loadu_si512(wj + ps) : zi);
        const __m512bh w2 = as_bh(NP > 2 ? _mm512_loadu_si512(wj + 2 * ps) : zi);
        const __m512bh w3 = as_bh(NP > 3 ? _mm512_loadu_si512(wj + 3 * ps) : zi);
#define AGF_ROW(b)                                                                      \
    if (MR > b) {                                                                       \
        const __m512bh xb = as_bh(_mm512_set1_epi32(static_cast<int>(X[b * ldx + j]))); \
        if (NP > 0) c##b##0 = _mm512_dpbf16_ps(c##b##0, xb, w0);                       \
        if (NP > 1) c##b##1 = _mm512_dpbf16_ps(c##b##1, xb, w1);                       \
        if (NP > 2) c##b##2 = _mm512_dpbf16_ps(c##b##2, xb, w2);                       \
        if (NP > 3) c##b##3 = _mm512_dpbf16_ps(c##b##3, xb, w3);                       \
    }
        AGF_ROW(0) AGF_ROW(1) AGF_ROW(2) AGF_ROW(3) AGF_ROW(4) AGF_ROW(5)
#undef AGF_ROW
    }
#define AGF_ST(b)                                                                   \
    if (MR > b) {                                                                   \
        if (NP > 0) _mm512_mask_storeu_ps(Y + b * ldy, mk(0), c##b##0);             \
        if (NP > 1) _mm512_mask_storeu_ps(Y + b * ldy + 16, mk(1), c##b##1);        \
        if (NP > 2) _mm512_mask_storeu_ps(Y + b * ldy + 32, mk(2), c##b##2);        \
        if (NP > 3) _mm512_mask_storeu_ps(Y + b * ldy + 48, mk(3), c##b##3);        \
    }
    AGF_ST(0) AGF_ST(1) AGF_ST(2) AGF_ST(3) AGF_ST(4) AGF_ST(5)
#undef AGF_ST
}

template <int NP>
void rows_of(const uint32_t* X, int rows, int64_t ldx, int K2, const uint32_t* w, int64_t ps, const float* bias,
             bool set, float* Y, int64_t ldy, __mmask16 mlast) {
    int r = 0;
    for (; r + 6 <= rows; r += 6) tile<6, NP>(X + r * ldx, ldx, K2, w, ps, bias, set, Y + r * ldy, ldy, mlast);
    const uint32_t* x = X + r * ldx;
    float* y = Y + r * ldy;
    switch (rows - r) {
        case 5: tile<5, NP>(x, ldx, K2, w, ps, bias, set, y, ldy, mlast); break;
        case 4: tile<4, NP>(x, ldx, K2, w, ps, bias, set, y, ldy, mlast); break;
        case 3: tile<3, NP>(x, ldx, K2, w, ps, bias, set, y, ldy, mlast); break;
        case 2: tile<2, NP>(x, ldx, K2, w, ps, bias, set, y, ldy, mlast); break;
        case 1: tile<1, NP>(x, ldx, K2, w, ps, bias, set, y, ldy, mlast); break;
        default: break;
    }
}

}  // namespace

void gemm_native(const uint32_t* X, int rows, int64_t ldx, int K2, const uint32_t* Wp, int N, const float* bias,
                 bool set, float* Y, int64_t ldy) {
    const int np_all = (N + 15) / 16;
    const int64_t ps = static_cast<int64_t>(K2) * 16;  // words per panel
    for (int p0 = 0; p0 < np_all; p0 += 4) {
        const int np = std::min(4, np_all - p0);
        const int wl = N - (p0 + np - 1) * 16;  // columns in the group's last panel (1..16)
        const __mmask16 ml = wl >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << wl) - 1);
        const uint32_t* w = Wp + p0 * ps;
        const float* b = bias ? bias + p0 * 16 : nullptr;
        float* y = Y + p0 * 16;
        switch (np) {
            case 4: rows_of<4>(X, rows, ldx, K2, w, ps, b, set, y, ldy, ml); break;
            case 3: rows_of<3>(X, rows, ldx, K2, w, ps, b, set, y, ldy, ml); break;
            case 2: rows_of<2>(X, rows, ldx, K2, w, ps, b, set, y, ldy, ml); break;
            default: rows_of<1>(X, rows, ldx, K2, w, ps, b, set, y, ldy, ml); break;
        }
    }
}

void pack_rows_native(const float* X, int rows, int K, int64_t ldx, uint32_t* out, int64_t ldo) {
    // 32 floats -> 16 words per vcvtne2ps2bf16 (its low half from the second operand)
    for (int r = 0; r < rows; ++r) {
        const float* x = X + r * ldx;
        uint32_t* o = out + r * ldo;
        for (int k = 0; k < K; k += 32) {
            const int left = K - k;
            const __mmask16 m0 = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
            const __mmask16 m1 = left >= 32 ? static_cast<__mmask16>(0xffff)
                                 : left > 16 ? static_cast<__mmask16>((1u << (left - 16)) - 1) : static_cast<__mmask16>(0);
            const __m512 lo = _mm512_maskz_loadu_ps(m0, x + k), hi = _mm512_maskz_loadu_ps(m1, x + k + 16);
            const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
            const int words = std::min(16, (left + 1) / 2);
            const __mmask16 mw = words >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << words) - 1);
            _mm512_mask_storeu_epi32(o + k / 2, mw, v);
        }
    }
}

bool native_compiled() { return true; }

}  // namespace bf16
}  // namespace agf

#else  // the compiler has no AVX512-BF16: the emulation serves every CPU

namespace agf {
namespace bf16 {
void gemm_native(const uint32_t* X, int rows, int64_t ldx, int K2, const uint32_t* Wp, int N, const float* bias,
                 bool set, float* Y, int64_t ldy) {
    gemm_emulated(X, rows, ldx, K2, Wp, N, bias, set, Y, ldy);
}
void pack_rows_native(const float* X, int rows, int K, int64_t ldx, uint32_t* out, int64_t ldo) {
    pack_rows(X, rows, K, ldx, out, ldo);
}
bool native_compiled() { return false; }
}  // namespace bf16
}  // namespace agf

#endif
