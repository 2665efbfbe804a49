// The int8 product (int8.h) on AVX512-VNNI: register tiles of 4 rows x 4 panels (64 columns) or,
// from 8 rows on, 8 rows x 2 panels: 16 zmm int32 accumulators as named variables (see
// bf16_avx512bf16.cpp). Per quad of k: the panel rows loaded, one broadcast of each X row's quad,
// 16 vpdpbusd (1,024 multiply-adds).
// Why not 6 rows like the bf16 kernel: with 24 int32 accumulators GCC 12 shuffled and spilled
// them to the stack every iteration (objdump: vmovdqa32 to and from the frame around each
// vpdpbusd) and the tile ran at 108-118 G multiply-adds/s per core; 4-row tiles run at 205-207
// (K = 512, N = 768, 6 to 24 rows, weights in L2), near the instruction's 228-232 peak here.
// Compiled with -mavx512f -mavx512bw -mavx512vnni where the compiler has them (setup.py), called
// only after int8::native_available().
#include "cpu/int8.h"

#include <algorithm>

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#include <immintrin.h>

// GCC 12 warns about the undefined pass-through operand inside _mm512_cvtepi32_ps (a false positive)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace agf {
namespace int8 {
namespace {

// MR rows x NP panels (at most 16 accumulators); the last panel stores (and loads) only the
// columns in mlast
template <int MR, int NP>
inline void tile(const uint32_t* X, int64_t ldx, int K4, const uint32_t* w, int64_t ps, const float* s,
                 const int32_t* zp, const float* sw, const int32_t* cs, const float* bias, bool set, float* Y,
                 int64_t ldy, __mmask16 mlast) {
    static_assert(MR >= 1 && MR <= 8 && NP >= 1 && NP <= 4 && MR * NP <= 16, "tile: at most 16 accumulators");
    const __m512i zi = _mm512_setzero_si512();
    auto mk = [&](int q) -> __mmask16 { return q == NP - 1 ? mlast : static_cast<__mmask16>(0xffff); };
    // acc starts at -zp * csum (the zero point's share, exact in int32)
    __m512i cs0 = NP > 0 ? _mm512_loadu_si512(cs) : zi, cs1 = NP > 1 ? _mm512_loadu_si512(cs + 16) : zi;
    __m512i cs2 = NP > 2 ? _mm512_loadu_si512(cs + 32) : zi, cs3 = NP > 3 ? _mm512_loadu_si512(cs + 48) : zi;
#define AGF_INIT(b)                                                                              \
    const __m512i nz##b = _mm512_set1_epi32(MR > b ? -zp[b] : 0);                                \
    __m512i c##b##0 = MR > b && NP > 0 ? _mm512_mullo_epi32(nz##b, cs0) : zi;                    \
    __m512i c##b##1 = MR > b && NP > 1 ? _mm512_mullo_epi32(nz##b, cs1) : zi;                    \
    __m512i c##b##2 = MR > b && NP > 2 ? _mm512_mullo_epi32(nz##b, cs2) : zi;                    \
    __m512i c##b##3 = MR > b && NP > 3 ? _mm512_mullo_epi32(nz##b, cs3) : zi;
    AGF_INIT(0) AGF_INIT(1) AGF_INIT(2) AGF_INIT(3) AGF_INIT(4) AGF_INIT(5) AGF_INIT(6) AGF_INIT(7)
#undef AGF_INIT
    for (int j = 0; j < K4; ++j) {
        const uint32_t* wj = w + static_cast<int64_t>(j) * 16;
        const __m512i w0 = NP > 0 ? _mm512_loadu_si512(wj) : zi;
        const __m512i w1 = NP > 1 ? _mm512_loadu_si512(wj + ps) : zi;
        const __m512i w2 = NP > 2 ? _mm512_loadu_si512(wj + 2 * ps) : zi;
        const __m512i w3 = NP > 3 ? _mm512_loadu_si512(wj + 3 * ps) : zi;
#define AGF_ROW(b)                                                                 \
    if (MR > b) {                                                                  \
        const __m512i xb = _mm512_set1_epi32(static_cast<int>(X[b * ldx + j]));    \
        if (NP > 0) c##b##0 = _mm512_dpbusd_epi32(c##b##0, xb, w0);               \
        if (NP > 1) c##b##1 = _mm512_dpbusd_epi32(c##b##1, xb, w1);               \
        if (NP > 2) c##b##2 = _mm512_dpbusd_epi32(c##b##2, xb, w2);               \
        if (NP > 3) c##b##3 = _mm512_dpbusd_epi32(c##b##3, xb, w3);               \
    }
        AGF_ROW(0) AGF_ROW(1) AGF_ROW(2) AGF_ROW(3) AGF_ROW(4) AGF_ROW(5) AGF_ROW(6) AGF_ROW(7)
#undef AGF_ROW
    }
    // y = fma(float(acc), s[row] * sw, base)
    auto out = [&](int b, int q, __m512i acc) {
        const __m512 sc = _mm512_mul_ps(_mm512_set1_ps(s[b]), _mm512_loadu_ps(sw + 16 * q));
        __m512 base;
        if (set) base = bias ? _mm512_maskz_loadu_ps(mk(q), bias + 16 * q) : _mm512_setzero_ps();
        else base = _mm512_maskz_loadu_ps(mk(q), Y + b * ldy + 16 * q);
        _mm512_mask_storeu_ps(Y + b * ldy + 16 * q, mk(q), _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), sc, base));
    };
#define AGF_ST(b)                          \
    if (MR > b) {                          \
        if (NP > 0) out(b, 0, c##b##0);    \
        if (NP > 1) out(b, 1, c##b##1);    \
        if (NP > 2) out(b, 2, c##b##2);    \
        if (NP > 3) out(b, 3, c##b##3);    \
    }
    AGF_ST(0) AGF_ST(1) AGF_ST(2) AGF_ST(3) AGF_ST(4) AGF_ST(5) AGF_ST(6) AGF_ST(7)
#undef AGF_ST
}

template <int NP>
void rows_of(const uint32_t* X, int rows, int64_t ldx, int K4, const uint32_t* w, int64_t ps, const float* s,
             const int32_t* zp, const float* sw, const int32_t* cs, const float* bias, bool set, float* Y, int64_t ldy,
             __mmask16 mlast) {
    int r = 0;
    if constexpr (NP <= 2)  // 8 rows x 2 panels: each panel row loaded once for 8 rows
        for (; r + 8 <= rows; r += 8)
            tile<8, NP>(X + r * ldx, ldx, K4, w, ps, s + r, zp + r, sw, cs, bias, set, Y + r * ldy, ldy, mlast);
    for (; r + 4 <= rows; r += 4)
        tile<4, NP>(X + r * ldx, ldx, K4, w, ps, s + r, zp + r, sw, cs, bias, set, Y + r * ldy, ldy, mlast);
    const uint32_t* x = X + r * ldx;
    float* y = Y + r * ldy;
    switch (rows - r) {
        case 3: tile<3, NP>(x, ldx, K4, w, ps, s + r, zp + r, sw, cs, bias, set, y, ldy, mlast); break;
        case 2: tile<2, NP>(x, ldx, K4, w, ps, s + r, zp + r, sw, cs, bias, set, y, ldy, mlast); break;
        case 1: tile<1, NP>(x, ldx, K4, w, ps, s + r, zp + r, sw, cs, bias, set, y, ldy, mlast); break;
        default: break;
    }
}

}  // namespace

void gemm_native(const uint32_t* X, int rows, int64_t ldx, const float* s, const int32_t* zp, const Weights& W,
                 const float* bias, bool set, float* Y, int64_t ldy) {
    const int N = W.N, K4 = quads(W.K), np_all = (N + 15) / 16;
    const int64_t ps = static_cast<int64_t>(K4) * 16;  // words per panel
    // panel groups of 4 (4-row tiles) or, from 8 rows on, of 2 (8-row tiles)
    const int group = rows >= 8 ? 2 : 4;
    for (int p0 = 0; p0 < np_all; p0 += group) {
        const int np = std::min(group, np_all - p0);
        const int wl = N - (p0 + np - 1) * 16;  // columns in the group's last panel (1..16)
        const __mmask16 ml = wl >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << wl) - 1);
        const uint32_t* w = W.w.data() + p0 * ps;
        const float* sw = W.scale.data() + p0 * 16;
        const int32_t* cs = W.csum.data() + p0 * 16;
        const float* b = bias ? bias + p0 * 16 : nullptr;
        float* y = Y + p0 * 16;
        switch (np) {
            case 4: rows_of<4>(X, rows, ldx, K4, w, ps, s, zp, sw, cs, b, set, y, ldy, ml); break;
            case 3: rows_of<3>(X, rows, ldx, K4, w, ps, s, zp, sw, cs, b, set, y, ldy, ml); break;
            case 2: rows_of<2>(X, rows, ldx, K4, w, ps, s, zp, sw, cs, b, set, y, ldy, ml); break;
            default: rows_of<1>(X, rows, ldx, K4, w, ps, s, zp, sw, cs, b, set, y, ldy, ml); break;
        }
    }
}

void quantize_rows_native(const float* X, int rows, int K, int64_t ldx, uint32_t* out, int64_t ldo, float* s,
                          int32_t* zp) {
    for (int r = 0; r < rows; ++r) {
        const float* x = X + r * ldx;
        // the range (exact in any order), then the conversion below
        __m512 vlo = _mm512_setzero_ps(), vhi = _mm512_setzero_ps();
        for (int k = 0; k < K; k += 16) {
            const int left = K - k;
            const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
            const __m512 v = _mm512_maskz_loadu_ps(m, x + k);  // masked lanes read as 0: inside [lo, hi]
            vlo = _mm512_min_ps(v, vlo), vhi = _mm512_max_ps(v, vhi);  // a NaN lane of v keeps vlo / vhi, as std::min / max do
        }
        const float lo = _mm512_reduce_min_ps(vlo), hi = _mm512_reduce_max_ps(vhi);
        quantize_rows_in_range_native(x, 1, K, ldx, &lo, &hi, out + r * ldo, ldo, s + r, zp + r);
    }
}

void quantize_rows_in_range_native(const float* X, int rows, int K, int64_t ldx, const float* lo, const float* hi,
                                   uint32_t* out, int64_t ldo, float* s, int32_t* zp) {
    for (int r = 0; r < rows; ++r) {
        const float* x = X + r * ldx;
        uint32_t* o = out + r * ldo;
        float inv;
        row_params(lo[r], hi[r], &s[r], &inv, &zp[r]);
        const int K4 = quads(K);
        if (s[r] == 0.0f) {
            std::fill(o, o + K4, 0u);
            continue;
        }
        const __m512 vinv = _mm512_set1_ps(inv);
        const __m512i vzp = _mm512_set1_epi32(zp[r]), v0 = _mm512_setzero_si512(), v255 = _mm512_set1_epi32(255);
        for (int k = 0; k < K; k += 16) {
            const int left = K - k;
            const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
            // cvtps_epi32 rounds to nearest even (MXCSR default), as nearbyint does
            __m512i u = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + k), vinv)), vzp);
            u = _mm512_min_epi32(_mm512_max_epi32(u, v0), v255);
            u = _mm512_maskz_mov_epi32(m, u);  // the padding bytes are 0
            // 16 lanes -> 16 bytes (4 words); the tail's word padded with zero bytes
            const int bytes = 4 * std::min(4, (left + 3) / 4);
            _mm512_mask_cvtepi32_storeu_epi8(o + k / 4, static_cast<__mmask16>((1u << bytes) - 1), u);
        }
    }
}

bool native_compiled() { return true; }

}  // namespace int8
}  // namespace agf

#else  // the compiler has no AVX512-VNNI: the emulation serves every CPU

namespace agf {
namespace int8 {
void gemm_native(const uint32_t* X, int rows, int64_t ldx, const float* s, const int32_t* zp, const Weights& W,
                 const float* bias, bool set, float* Y, int64_t ldy) {
    gemm_emulated(X, rows, ldx, s, zp, W, bias, set, Y, ldy);
}
void quantize_rows_native(const float* X, int rows, int K, int64_t ldx, uint32_t* out, int64_t ldo, float* s,
                          int32_t* zp) {
    quantize_rows(X, rows, K, ldx, out, ldo, s, zp);
}
void quantize_rows_in_range_native(const float* X, int rows, int K, int64_t ldx, const float* lo, const float* hi,
                                   uint32_t* out, int64_t ldo, float* s, int32_t* zp) {
    quantize_rows_in_range(X, rows, K, ldx, lo, hi, out, ldo, s, zp);
}
bool native_compiled() { return false; }
}  // namespace int8
}  // namespace agf

#endif
