// The bf16 and int8 products (bf16.h, int8.h) on AVX2 + FMA, for CPUs without AVX512-BF16 /
// AVX512-VNNI (AMD Zen 2 / Zen 3, Intel before Ice Lake / Cooper Lake, most cloud VMs). Both give
// the exact bits of the rules in those headers (tests compare them with the emulations bit for bit).
//
// Why: without them those CPUs ran the plain C++ emulations, which are scalar: on a Zen 3 VM
// (2026-12-01) R2 with int8 products ran at 657 samples/s against 4,956 in fp32, D1 in bf16 at
// 104 against 8,299 (the emulations compute the rule one multiply-add at a time).
//
// int8: AVX2 has no u8 x s8 -> s32 dot product without 16-bit saturation (vpmaddubsw saturates:
// 2 * 255 * 127 > 32767), so both operands are widened to 16 bits and vpmaddwd (exact s16 x s16
// pair sums into s32) does 16 multiply-adds per instruction, twice the fp32 FMA's 8. A weight
// panel's quad row (16 columns x 4 k, 64 bytes) widens into 4 registers of 4 columns x 4 k; each
// X quad is widened once per call to 4 s16, u - zp (64 bits: the zero point folded in), and
// broadcast. vpmaddwd leaves each column's sum in two adjacent int32 lanes (k0 k1 | k2 k3), added
// pairwise at the end (integers: exact).
//
// bf16: a bf16 value is the top half of an fp32, so the pairs widen by a shift (element 2j) and
// a mask (element 2j+1) and the rule's two fmas per pair run as fp32 FMAs in the rule's order.
// The rule flushes subnormal accumulators and results to signed zero; here the MXCSR's DAZ bit
// (denormal inputs read as signed zero) is set for the call, so a subnormal step result is
// flushed when the next fma reads it, and the last result is flushed explicitly before the
// store. X rows are widened to fp32 pairs once per call. Compiled with -mavx2 -mfma (setup.py),
// called only when the CPU has both and avx2_compiled() (kernels.h) says this build has them: a
// build whose compiler has no such flags (aarch64) compiles the forwards to the emulations at the
// end of this file.
#include "cpu/bf16.h"
#include "cpu/int8.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

// the register tiles' loops over rows and panels unrolled before GCC decides where the accumulator
// arrays live (left as loops, the arrays stay on the stack: a load and a store around every FMA)
#define AGF_UNROLL _Pragma("GCC unroll 16")

namespace agf {

namespace {
// lanes 0..n-1 set (n in 0..8): the mask of maskload / maskstore for a partial group of 8 columns
inline __m256i lanes(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
}  // namespace

namespace int8 {
namespace {

// MR rows x one 16-column panel: 4 int32 accumulators per row, one per group of 4 columns
// (lanes: c k01, c k23, c+1 k01, c+1 k23 | c+2 ..., c+3 ...). xw: the rows' widened quads (K4 a
// row). The panel's nq quad rows of 16 words at w: dense, quads 0..nq-1; sparse (kSparse), the
// quads idx[0..nq-1] (int8.h's block-sparse form).
// xw holds u - zp (widen_rows), so the sums are sum_k (u - zp) q = sum_k u q - zp csum: the rule's
// integer, with no zero-point term left for the epilogue.
template <int MR, bool kSparse = false>
inline void tile(const uint64_t* xw, int K4, int nq, const int32_t* idx, const uint32_t* w, const float* s,
                 const float* sw, const float* bias, bool set, float* Y, int64_t ldy, int ncols) {
    static_assert(MR >= 1 && MR <= 3, "tile: 4 accumulators a row, 16 registers");
    __m256i a[MR][4];
    AGF_UNROLL for (int b = 0; b < MR; ++b)
        AGF_UNROLL for (int g = 0; g < 4; ++g) a[b][g] = _mm256_setzero_si256();
    for (int i = 0; i < nq; ++i) {
        const int j = kSparse ? idx[i] : i;
        const __m128i* wj = reinterpret_cast<const __m128i*>(w + static_cast<int64_t>(i) * 16);
        __m256i xb[MR];
        AGF_UNROLL for (int b = 0; b < MR; ++b) xb[b] = _mm256_set1_epi64x(static_cast<long long>(xw[b * K4 + j]));
        AGF_UNROLL for (int g = 0; g < 4; ++g) {
            const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(wj + g));  // 4 columns x 4 k, s16
            AGF_UNROLL for (int b = 0; b < MR; ++b) a[b][g] = _mm256_add_epi32(a[b][g], _mm256_madd_epi16(wv, xb[b]));
        }
    }
    AGF_UNROLL for (int b = 0; b < MR; ++b) {
        const __m256 sb = _mm256_set1_ps(s[b]);
        AGF_UNROLL for (int h = 0; h < 2; ++h) {  // columns 8h .. 8h + 7
            const int n = std::min(8, ncols - 8 * h);
            if (n <= 0) break;
            // pair sums: [c0 c1 c4 c5 | c2 c3 c6 c7] -> columns in order
            const __m256i acc = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a[b][2 * h], a[b][2 * h + 1]), 0xD8);
            const __m256 sc = _mm256_mul_ps(sb, _mm256_loadu_ps(sw + 8 * h));
            float* y = Y + b * ldy + 8 * h;
            if (n == 8) {
                const __m256 base = set ? (bias ? _mm256_loadu_ps(bias + 8 * h) : _mm256_setzero_ps()) : _mm256_loadu_ps(y);
                _mm256_storeu_ps(y, _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), sc, base));
            } else {  // the columns past N stay untouched
                const __m256i m = lanes(n);
                const __m256 base = set ? (bias ? _mm256_maskload_ps(bias + 8 * h, m) : _mm256_setzero_ps()) : _mm256_maskload_ps(y, m);
                _mm256_maskstore_ps(y, m, _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), sc, base));
            }
        }
    }
}

// each row's quads (4 u8 in a word) -> 4 s16 u - zp in 64 bits (in [-255, 255]: each vpmaddwd
// pair sum (u - zp) q + (u' - zp) q' stays within 2 * 255 * 127, exact; padding bytes, u = 0,
// become -zp against weight bytes 0)
void widen_rows(const uint32_t* X, int rows, int64_t ldx, int K4, const int32_t* zp, uint64_t* out) {
    for (int r = 0; r < rows; ++r) {
        const uint32_t* x = X + r * ldx;
        uint64_t* o = out + static_cast<size_t>(r) * K4;
        const __m256i z = _mm256_set1_epi16(static_cast<int16_t>(zp[r]));
        int j = 0;
        for (; j + 4 <= K4; j += 4)
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + j),
                                _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + j))), z));
        for (; j < K4; ++j) {
            uint64_t v = 0;
            for (int t = 0; t < 4; ++t) {
                const int32_t d = static_cast<int32_t>((x[j] >> (8 * t)) & 0xffu) - zp[r];
                v |= static_cast<uint64_t>(static_cast<uint16_t>(d)) << (16 * t);
            }
            o[j] = v;
        }
    }
}

// both forms of W: the panels' quad rows (all K4 of them, or the sparse form's kept ones) in
// tiles of up to 3 rows. One row (the recurrent loops' batch 1) has its own panel loop: with the
// 3- and 2-row tiles in the same loop GCC kept the panel's pointers on the stack (perf: the
// per-panel bookkeeping was most of a sparse product's time at 10% density)
template <bool kSparse>
void gemm_panels(const uint32_t* X, int rows, int64_t ldx, const float* s, const int32_t* zp, const Weights& W,
                 const float* bias, bool set, float* Y, int64_t ldy) {
    if (rows <= 0 || W.N <= 0) return;
    const int N = W.N, K4 = quads(W.K), np = (N + 15) / 16;
    thread_local std::vector<uint64_t> xw_buf;
    if (xw_buf.size() < static_cast<size_t>(rows) * K4) xw_buf.resize(static_cast<size_t>(rows) * K4);
    uint64_t* const xw = xw_buf.data();
    widen_rows(X, rows, ldx, K4, zp, xw);
    const int32_t* start = kSparse ? W.sp.start.data() : nullptr;
    const int32_t* kidx = kSparse ? W.sp.kidx.data() : nullptr;
    const uint32_t* w0 = W.w.data();
    const float* sw = W.scale.data();
    // panel p: its first quad row and how many it has
    auto q0 = [&](int p) -> int64_t { return kSparse ? start[p] : static_cast<int64_t>(p) * K4; };
    auto nq = [&](int p) -> int { return kSparse ? start[p + 1] - start[p] : K4; };
    if (rows == 1) {
        for (int p = 0; p < np; ++p)
            tile<1, kSparse>(xw, K4, nq(p), kidx + (kSparse ? q0(p) : 0), w0 + q0(p) * 16, s, sw + 16 * p,
                             bias ? bias + 16 * p : nullptr, set, Y + 16 * p, ldy, std::min(16, N - 16 * p));
        return;
    }
    for (int p = 0; p < np; ++p) {
        const int64_t q = q0(p);
        const int n = nq(p), nc = std::min(16, N - 16 * p);
        const int32_t* idx = kSparse ? kidx + q : nullptr;
        const uint32_t* w = w0 + q * 16;
        const float* bp = bias ? bias + 16 * p : nullptr;
        int r = 0;
        for (; r + 3 <= rows; r += 3)
            tile<3, kSparse>(xw + static_cast<size_t>(r) * K4, K4, n, idx, w, s + r, sw + 16 * p, bp, set,
                             Y + r * ldy + 16 * p, ldy, nc);
        if (rows - r == 2)
            tile<2, kSparse>(xw + static_cast<size_t>(r) * K4, K4, n, idx, w, s + r, sw + 16 * p, bp, set,
                             Y + r * ldy + 16 * p, ldy, nc);
        else if (rows - r == 1)
            tile<1, kSparse>(xw + static_cast<size_t>(r) * K4, K4, n, idx, w, s + r, sw + 16 * p, bp, set,
                             Y + r * ldy + 16 * p, ldy, nc);
    }
}

}  // namespace

void gemm_avx2(const uint32_t* X, int rows, int64_t ldx, const float* s, const int32_t* zp, const Weights& W,
               const float* bias, bool set, float* Y, int64_t ldy) {
    gemm_panels<false>(X, rows, ldx, s, zp, W, bias, set, Y, ldy);
}

void gemm_sparse_avx2(const uint32_t* X, int rows, int64_t ldx, const float* s, const int32_t* zp, const Weights& W,
                      const float* bias, bool set, float* Y, int64_t ldy) {
    gemm_panels<true>(X, rows, ldx, s, zp, W, bias, set, Y, ldy);
}

void quantize_rows_in_range_avx2(const float* X, int rows, int K, int64_t ldx, const float* lo, const float* hi,
                                 uint32_t* out, int64_t ldo, float* s, int32_t* zp) {
    const int K4 = quads(K);
    // the first 4 bytes of each 128-bit half (one int32 lane each after two packs) side by side
    const __m256i gather = _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0);
    for (int r = 0; r < rows; ++r) {
        const float* x = X + r * ldx;
        uint32_t* o = out + r * ldo;
        float inv;
        row_params(lo[r], hi[r], &s[r], &inv, &zp[r]);
        std::fill(o, o + K4, 0u);
        if (s[r] == 0.0f) continue;
        const __m256 vinv = _mm256_set1_ps(inv);
        const __m256i vzp = _mm256_set1_epi32(zp[r]), v0 = _mm256_setzero_si256(), v255 = _mm256_set1_epi32(255);
        int k = 0;
        for (; k + 8 <= K; k += 8) {
            // cvtps_epi32 rounds to nearest even (MXCSR default), as nearbyint does
            __m256i u = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k), vinv)), vzp);
            u = _mm256_min_epi32(_mm256_max_epi32(u, v0), v255);
            u = _mm256_packus_epi16(_mm256_packus_epi32(u, u), v0);  // bytes 0-3 of each half
            u = _mm256_permutevar8x32_epi32(u, gather);
            _mm_storel_epi64(reinterpret_cast<__m128i*>(o + k / 4), _mm256_castsi256_si128(u));
        }
        quantize_elements(x, k, K, inv, zp[r], o);  // the rest, element by element
    }
}

void quantize_rows_avx2(const float* X, int rows, int K, int64_t ldx, uint32_t* out, int64_t ldo, float* s,
                        int32_t* zp) {
    for (int r = 0; r < rows; ++r) {
        const float* x = X + r * ldx;
        // the range (min and max are exact in any order), then the conversion above
        __m256 vlo = _mm256_setzero_ps(), vhi = _mm256_setzero_ps();
        int k = 0;
        for (; k + 8 <= K; k += 8) {
            const __m256 v = _mm256_loadu_ps(x + k);
            vlo = _mm256_min_ps(v, vlo), vhi = _mm256_max_ps(v, vhi);  // a NaN lane of v keeps vlo / vhi, as std::min / max do
        }
        float l8[8], h8[8];
        _mm256_storeu_ps(l8, vlo), _mm256_storeu_ps(h8, vhi);
        float lo = 0.0f, hi = 0.0f;
        for (int i = 0; i < 8; ++i) lo = std::min(lo, l8[i]), hi = std::max(hi, h8[i]);
        for (; k < K; ++k) lo = std::min(lo, x[k]), hi = std::max(hi, x[k]);
        quantize_rows_in_range_avx2(x, 1, K, ldx, &lo, &hi, out + r * ldo, ldo, s + r, zp + r);
    }
}

}  // namespace int8

namespace bf16 {
namespace {

// MR rows x NP 16-column panels (ps words apart), 2 registers per row and panel. xf: the rows'
// pairs widened, each row K2 floats of the pairs' elements 2j + 1 then K2 of their elements 2j
// (the rule's order). Each accumulator is a chain of dependent FMAs (the rule fixes the order), so
// the tiles keep 8 of them: 2 FMA pipes x 4 cycles of latency (one row: 4 panels at once).
// nlast: the columns of the last panel (1..16).
template <int MR, int NP>
inline void tile(const float* xf, int K2, const uint32_t* w, int64_t ps, const float* bias, bool set, float* Y,
                 int64_t ldy, int nlast) {
    static_assert(MR >= 1 && NP >= 1 && MR * NP <= 4, "tile: 8 accumulators");
    const __m256i m0 = lanes(nlast), m1 = lanes(nlast - 8);
    auto full = [&](int q) { return q < NP - 1 || nlast == 16; };
    auto load = [&](int q, int h, const float* p) {
        return full(q) ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, h ? m1 : m0);
    };
    __m256 a[MR][NP][2];
    AGF_UNROLL for (int b = 0; b < MR; ++b)
        AGF_UNROLL for (int q = 0; q < NP; ++q)
            AGF_UNROLL for (int h = 0; h < 2; ++h) {
                const int c = 16 * q + 8 * h;
                if (set) a[b][q][h] = bias ? load(q, h, bias + c) : _mm256_setzero_ps();
                else a[b][q][h] = load(q, h, Y + b * ldy + c);
            }
    const __m256i hi16 = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
    for (int j = 0; j < K2; ++j) {
        // the rows' broadcasts: held across the panels, or (one panel, 4 rows: no registers to
        // spare) made where they are used
        auto bx = [&](int b, int lo) { return _mm256_broadcast_ss(xf + static_cast<size_t>(b) * 2 * K2 + lo * K2 + j); };
        __m256 xh[MR], xl[MR];
        if constexpr (NP > 1)
            AGF_UNROLL for (int b = 0; b < MR; ++b) xh[b] = bx(b, 0), xl[b] = bx(b, 1);
        AGF_UNROLL for (int q = 0; q < NP; ++q) {
            const __m256i* wj = reinterpret_cast<const __m256i*>(w + q * ps + static_cast<int64_t>(j) * 16);
            const __m256i w0 = _mm256_loadu_si256(wj), w1 = _mm256_loadu_si256(wj + 1);
            const __m256 wh0 = _mm256_castsi256_ps(_mm256_and_si256(w0, hi16));   // element 2j + 1
            const __m256 wh1 = _mm256_castsi256_ps(_mm256_and_si256(w1, hi16));
            const __m256 wl0 = _mm256_castsi256_ps(_mm256_slli_epi32(w0, 16));    // element 2j
            const __m256 wl1 = _mm256_castsi256_ps(_mm256_slli_epi32(w1, 16));
            AGF_UNROLL for (int b = 0; b < MR; ++b) {
                if constexpr (NP == 1) xh[b] = bx(b, 0), xl[b] = bx(b, 1);
                a[b][q][0] = _mm256_fmadd_ps(xl[b], wl0, _mm256_fmadd_ps(xh[b], wh0, a[b][q][0]));
                a[b][q][1] = _mm256_fmadd_ps(xl[b], wl1, _mm256_fmadd_ps(xh[b], wh1, a[b][q][1]));
            }
        }
    }
    // the last result's flush (earlier ones were read as zero under DAZ), then the store; the
    // columns past N stay untouched
    const __m256 sign = _mm256_set1_ps(-0.0f), tiny = _mm256_set1_ps(FLT_MIN);
    AGF_UNROLL for (int b = 0; b < MR; ++b)
        AGF_UNROLL for (int q = 0; q < NP; ++q)
            AGF_UNROLL for (int h = 0; h < 2; ++h) {
                const __m256 v = a[b][q][h];
                const __m256 sub = _mm256_cmp_ps(_mm256_andnot_ps(sign, v), tiny, _CMP_LT_OQ);
                float* y = Y + b * ldy + 16 * q + 8 * h;
                const __m256 o = _mm256_blendv_ps(v, _mm256_and_ps(v, sign), sub);
                if (full(q)) _mm256_storeu_ps(y, o);
                else _mm256_maskstore_ps(y, h ? m1 : m0, o);
            }
}

// MXCSR's DAZ bit for the lifetime of the object (restored after)
struct DenormalsAreZero {
    unsigned saved;
    DenormalsAreZero() : saved(_mm_getcsr()) { _mm_setcsr(saved | 0x0040u); }
    ~DenormalsAreZero() { _mm_setcsr(saved); }
};

}  // namespace

void gemm_avx2(const uint32_t* X, int rows, int64_t ldx, int K2, const uint32_t* Wp, int N, const float* bias, bool set,
               float* Y, int64_t ldy) {
    if (rows <= 0 || N <= 0) return;
    thread_local std::vector<float> xf;
    if (xf.size() < static_cast<size_t>(rows) * K2 * 2) xf.resize(static_cast<size_t>(rows) * K2 * 2);
    const __m256i hi16 = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
    for (int r = 0; r < rows; ++r) {  // each row: its K2 elements 2j + 1, then its K2 elements 2j
        const uint32_t* x = X + r * ldx;
        float* oh = xf.data() + static_cast<size_t>(r) * K2 * 2;
        float* ol = oh + K2;
        int j = 0;
        for (; j + 8 <= K2; j += 8) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + j));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(oh + j), _mm256_and_si256(v, hi16));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(ol + j), _mm256_slli_epi32(v, 16));
        }
        for (; j < K2; ++j) {
            oh[j] = value(static_cast<uint16_t>(x[j] >> 16));
            ol[j] = value(static_cast<uint16_t>(x[j]));
        }
    }
    DenormalsAreZero daz;
    const int np_all = (N + 15) / 16;
    const int64_t ps = static_cast<int64_t>(K2) * 16;  // words per panel
    const size_t xs = static_cast<size_t>(K2) * 2;     // floats per widened row
    // columns of the last panel of a group of np panels from p
    auto last = [&](int p, int np) { return N - 16 * (p + np - 1); };
    int r = 0;
    if (rows >= 4)  // 4-row tiles, panel by panel (a panel's weights stay in L1 for all the rows)
        for (int p = 0; p < np_all; ++p) {
            const float* bp = bias ? bias + 16 * p : nullptr;
            for (r = 0; r + 4 <= rows; r += 4)
                tile<4, 1>(xf.data() + r * xs, K2, Wp + p * ps, ps, bp, set, Y + r * ldy + 16 * p, ldy, last(p, 1));
        }
    const int left = rows - r;
    const float* xr = xf.data() + r * xs;
    float* yr = Y + r * ldy;
    const int group = left == 1 ? 4 : left == 2 ? 2 : 1;  // panels at once: 8 accumulators
    for (int p = 0; left > 0 && p < np_all; p += group) {
        const int np = std::min(group, np_all - p), nl = last(p, np);
        const uint32_t* w = Wp + p * ps;
        const float* bp = bias ? bias + 16 * p : nullptr;
        float* y = yr + 16 * p;
        if (left == 3) tile<3, 1>(xr, K2, w, ps, bp, set, y, ldy, nl);
        else if (left == 2 && np == 2) tile<2, 2>(xr, K2, w, ps, bp, set, y, ldy, nl);
        else if (left == 2) tile<2, 1>(xr, K2, w, ps, bp, set, y, ldy, nl);
        else if (np == 4) tile<1, 4>(xr, K2, w, ps, bp, set, y, ldy, nl);
        else if (np == 3) tile<1, 3>(xr, K2, w, ps, bp, set, y, ldy, nl);
        else if (np == 2) tile<1, 2>(xr, K2, w, ps, bp, set, y, ldy, nl);
        else tile<1, 1>(xr, K2, w, ps, bp, set, y, ldy, nl);
    }
}

void pack_rows_avx2(const float* X, int rows, int K, int64_t ldx, uint32_t* out, int64_t ldo) {
    // 16 floats -> 8 words: bf16::round on 8 lanes at a time, two packs, a lane fix-up
    const __m256i expo = _mm256_set1_epi32(0x7f800000), one = _mm256_set1_epi32(1), half = _mm256_set1_epi32(0x7fff),
                  sgn = _mm256_set1_epi32(0x8000), zero = _mm256_setzero_si256();
    auto round8 = [&](const float* p) {
        const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(p));
        const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(half, _mm256_and_si256(_mm256_srli_epi32(u, 16), one))), 16);
        const __m256i sub = _mm256_cmpeq_epi32(_mm256_and_si256(u, expo), zero);  // subnormal or zero: the sign alone
        return _mm256_blendv_epi8(r, _mm256_and_si256(_mm256_srli_epi32(u, 16), sgn), sub);
    };
    for (int r = 0; r < rows; ++r) {
        const float* x = X + r * ldx;
        uint32_t* o = out + r * ldo;
        int k = 0;
        for (; k + 16 <= K; k += 16) {
            const __m256i v = _mm256_permute4x64_epi64(_mm256_packus_epi32(round8(x + k), round8(x + k + 8)), 0xD8);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + k / 2), v);
        }
        for (; k + 1 < K; k += 2) o[k / 2] = round(x[k]) | (static_cast<uint32_t>(round(x[k + 1])) << 16);
        if (k < K) o[k / 2] = round(x[k]);
    }
}

}  // namespace bf16
}  // namespace agf

#else  // no AVX2 / FMA in this build (not x86-64): never called (avx2_available() is false)

namespace agf {
namespace int8 {
void gemm_avx2(const uint32_t* X, int rows, int64_t ldx, const float* s, const int32_t* zp, const Weights& W,
               const float* bias, bool set, float* Y, int64_t ldy) {
    gemm_emulated(X, rows, ldx, s, zp, W, bias, set, Y, ldy);
}
void gemm_sparse_avx2(const uint32_t* X, int rows, int64_t ldx, const float* s, const int32_t* zp, const Weights& W,
                      const float* bias, bool set, float* Y, int64_t ldy) {
    gemm_sparse_emulated(X, rows, ldx, s, zp, W, bias, set, Y, ldy);
}
void quantize_rows_avx2(const float* X, int rows, int K, int64_t ldx, uint32_t* out, int64_t ldo, float* s,
                        int32_t* zp) {
    quantize_rows(X, rows, K, ldx, out, ldo, s, zp);
}
void quantize_rows_in_range_avx2(const float* X, int rows, int K, int64_t ldx, const float* lo, const float* hi,
                                 uint32_t* out, int64_t ldo, float* s, int32_t* zp) {
    quantize_rows_in_range(X, rows, K, ldx, lo, hi, out, ldo, s, zp);
}
}  // namespace int8
namespace bf16 {
void gemm_avx2(const uint32_t* X, int rows, int64_t ldx, int K2, const uint32_t* Wp, int N, const float* bias, bool set,
               float* Y, int64_t ldy) {
    gemm_emulated(X, rows, ldx, K2, Wp, N, bias, set, Y, ldy);
}
void pack_rows_avx2(const float* X, int rows, int K, int64_t ldx, uint32_t* out, int64_t ldo) {
    pack_rows(X, rows, K, ldx, out, ldo);
}
}  // namespace bf16
}  // namespace agf

#endif
