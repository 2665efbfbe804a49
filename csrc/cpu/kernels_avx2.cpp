// AVX2 + FMA versions of kernels.h. This file is compiled with -mavx2 -mfma -mf16c and only
// called after cpu_features() confirmed the instructions exist. Where the compiler has no such
// flags (an aarch64 build: setup.py passes them only where the compiler takes them) it compiles
// to a forward to the portable kernels, and avx2_compiled() says so.
#include "cpu/kernels.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace agf {
namespace {

// the small register tiles' loops unrolled, so their accumulator arrays stay in registers
#define AGF_UNROLL2 _Pragma("GCC unroll 8")

// 8 weights -> 8 floats: plain loads for fp32, F16C conversion for fp16.
inline __m256 ld8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 ld8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline float ld1(const float* p) { return *p; }
inline float ld1(const uint16_t* p) { return half_to_float(*p); }

// y[i] += sum_k x[k] * W[k * ld + c0 + i]: the output columns are held in NB accumulators of 8
// (NB = 8, 4, 2, 1 for 64-, 32-, 16-, 8-column blocks) while the k loop streams W's rows.
template <int NB, typename WT>
inline void axpy_block(const float* x, int n_in, const WT* w, int ld, float* y) {
    __m256 a[NB];
    for (int j = 0; j < NB; ++j) a[j] = _mm256_loadu_ps(y + 8 * j);
    for (int k = 0; k < n_in; ++k, w += ld) {
        const __m256 xk = _mm256_broadcast_ss(x + k);
        for (int j = 0; j < NB; ++j) a[j] = _mm256_fmadd_ps(xk, ld8(w + 8 * j), a[j]);
    }
    for (int j = 0; j < NB; ++j) _mm256_storeu_ps(y + 8 * j, a[j]);
}

template <typename WT>
void axpy_cols_t(const float* x, int n_in, const WT* W, int ld, int c0, int c1, float* y) {
    const int n = c1 - c0;
    int i = 0;
    for (; i + 64 <= n; i += 64) axpy_block<8>(x, n_in, W + c0 + i, ld, y + i);
    if (i + 32 <= n) { axpy_block<4>(x, n_in, W + c0 + i, ld, y + i); i += 32; }
    if (i + 16 <= n) { axpy_block<2>(x, n_in, W + c0 + i, ld, y + i); i += 16; }
    for (; i + 8 <= n; i += 8) axpy_block<1>(x, n_in, W + c0 + i, ld, y + i);
    for (; i < n; ++i) {
        float acc = y[i];
        const WT* w = W + c0 + i;
        for (int k = 0; k < n_in; ++k) acc += x[k] * ld1(w + static_cast<int64_t>(k) * ld);
        y[i] = acc;
    }
}

void axpy_cols(const float* x, int n_in, const float* W, int ld, int c0, int c1, float* y) {
    axpy_cols_t(x, n_in, W, ld, c0, c1, y);
}

void axpy_cols_h(const float* x, int n_in, const uint16_t* W, int ld, int c0, int c1, float* y) {
    axpy_cols_t(x, n_in, W, ld, c0, c1, y);
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

// Register tiles: up to 6 rows x 16 columns, the twelve accumulators as named variables (GCC
// keeps an accumulator array like a[6][2] on the stack and stores it every iteration: 15 instead
// of 40-44 GMAC/s per core measured here). The last, narrower panel of gemm_packed goes through
// packed_tile_small (a 16-wide scratch so no column past N is touched).
// MR (1..6) rows x 16 columns; W rows `ws` floats apart (16 for a packed panel, ld for a
// strided matrix). Rows beyond MR are compiled out.
// bias: null -> accumulate into Y; else Y = bias (16 floats, same for every row) + X W.
template <int MR, typename WT = float>
inline void tile16(const float* X, int64_t ldx, int K, const WT* w, int64_t ws, float* Y, int64_t ldy,
                   const float* bias = nullptr) {
    const __m256 z = _mm256_setzero_ps();
    const __m256 i0 = bias ? _mm256_loadu_ps(bias) : z, i1 = bias ? _mm256_loadu_ps(bias + 8) : z;
#define AGF_LD(b)                                                                              \
    __m256 c##b##0 = MR > b ? (bias ? i0 : _mm256_loadu_ps(Y + b * ldy)) : z,                   \
           c##b##1 = MR > b ? (bias ? i1 : _mm256_loadu_ps(Y + b * ldy + 8)) : z;
    AGF_LD(0) AGF_LD(1) AGF_LD(2) AGF_LD(3) AGF_LD(4) AGF_LD(5)
#undef AGF_LD
    for (int k = 0; k < K; ++k, w += ws) {
        const __m256 w0 = ld8(w), w1 = ld8(w + 8);
#define AGF_FMA(b)                                            \
    if (MR > b) {                                             \
        const __m256 xb = _mm256_broadcast_ss(X + b * ldx + k); \
        c##b##0 = _mm256_fmadd_ps(xb, w0, c##b##0);           \
        c##b##1 = _mm256_fmadd_ps(xb, w1, c##b##1);           \
    }
        AGF_FMA(0) AGF_FMA(1) AGF_FMA(2) AGF_FMA(3) AGF_FMA(4) AGF_FMA(5)
#undef AGF_FMA
    }
#define AGF_ST(b) \
    if (MR > b) { _mm256_storeu_ps(Y + b * ldy, c##b##0); _mm256_storeu_ps(Y + b * ldy + 8, c##b##1); }
    AGF_ST(0) AGF_ST(1) AGF_ST(2) AGF_ST(3) AGF_ST(4) AGF_ST(5)
#undef AGF_ST
}

template <typename WT = float>
inline void tile16_rows(const float* X, int64_t ldx, int rows, int K, const WT* w, int64_t ws, float* Y, int64_t ldy,
                        const float* bias = nullptr) {
    int r = 0;
    for (; r + 6 <= rows; r += 6) tile16<6, WT>(X + r * ldx, ldx, K, w, ws, Y + r * ldy, ldy, bias);
    switch (rows - r) {
        case 5: tile16<5, WT>(X + r * ldx, ldx, K, w, ws, Y + r * ldy, ldy, bias); break;
        case 4: tile16<4, WT>(X + r * ldx, ldx, K, w, ws, Y + r * ldy, ldy, bias); break;
        case 3: tile16<3, WT>(X + r * ldx, ldx, K, w, ws, Y + r * ldy, ldy, bias); break;
        case 2: tile16<2, WT>(X + r * ldx, ldx, K, w, ws, Y + r * ldy, ldy, bias); break;
        case 1: tile16<1, WT>(X + r * ldx, ldx, K, w, ws, Y + r * ldy, ldy, bias); break;
        default: break;
    }
}

// One row at a time (tails: fewer than 6 rows left, or a panel narrower than 16).
inline void packed_tile_small(const float* X, int ldx, int rows, int K, const float* wp, float* Y, int ldy, int w) {
    for (int b = 0; b < rows; ++b) {
        alignas(32) float tmp[16] = {};
        float* yb = Y + static_cast<int64_t>(b) * ldy;
        for (int i = 0; i < w; ++i) tmp[i] = yb[i];
        __m256 a0 = _mm256_load_ps(tmp), a1 = _mm256_load_ps(tmp + 8);
        const float* xb = X + static_cast<int64_t>(b) * ldx;
        const float* wk = wp;
        for (int k = 0; k < K; ++k, wk += 16) {
            const __m256 xv = _mm256_broadcast_ss(xb + k);
            a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(wk), a0);
            a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(wk + 8), a1);
        }
        _mm256_store_ps(tmp, a0);
        _mm256_store_ps(tmp + 8, a1);
        for (int i = 0; i < w; ++i) yb[i] = tmp[i];
    }
}

void gemm_packed(const float* X, int rows, int ldx, int K, const float* Wp, int N, float* Y, int ldy) {
    for (int p = 0; p * 16 < N; ++p) {
        const int w = std::min(16, N - p * 16);
        const float* wp = Wp + static_cast<size_t>(p) * K * 16;
        if (w == 16)
            tile16_rows(X, ldx, rows, K, wp, 16, Y + p * 16, ldy);
        else
            packed_tile_small(X, ldx, rows, K, wp, Y + p * 16, ldy, w);
    }
}

void gemm_packed_set(const float* X, int rows, int ldx, int K, const float* Wp, int N, const float* bias, float* Y,
                     int ldy) {
    alignas(32) static const float zeros[16] = {};
    for (int p = 0; p * 16 < N; ++p) {
        const int w = std::min(16, N - p * 16);
        const float* wp = Wp + static_cast<size_t>(p) * K * 16;
        if (w == 16) {
            tile16_rows(X, ldx, rows, K, wp, 16, Y + p * 16, ldy, bias ? bias + p * 16 : zeros);
        } else {
            for (int r = 0; r < rows; ++r)
                for (int i = 0; i < w; ++i) Y[static_cast<int64_t>(r) * ldy + p * 16 + i] = bias ? bias[p * 16 + i] : 0.0f;
            packed_tile_small(X, ldx, rows, K, wp, Y + p * 16, ldy, w);
        }
    }
}

// One contiguous 64-column panel times x (the matrix-vector case of gemm_panels), with the
// weights prefetched kPanelPrefetch bytes ahead under the non-temporal hint. The batch-1 loops
// stream megabytes of weights per step, far more than L2; prefetcht0 of the same lines made the
// WaveNet loop slower, prefetchnta makes it faster. Paired runs on this 2-core EPYC
// (2026-11-23): W2 fp32 +14-16%, fp16 +50%, R2 fp16 +63%, R2 fp32 +2% (distances 512-4096 B
// all within a few % of each other).
constexpr int kPanelPrefetch = 2048;

template <typename WT>
inline void axpy_panel64(const float* x, int n_in, const WT* w, float* y) {
    __m256 a0 = _mm256_loadu_ps(y), a1 = _mm256_loadu_ps(y + 8), a2 = _mm256_loadu_ps(y + 16);
    __m256 a3 = _mm256_loadu_ps(y + 24), a4 = _mm256_loadu_ps(y + 32), a5 = _mm256_loadu_ps(y + 40);
    __m256 a6 = _mm256_loadu_ps(y + 48), a7 = _mm256_loadu_ps(y + 56);
    for (int k = 0; k < n_in; ++k, w += 64) {
        // one row is 64 weights: 4 cache lines in fp32, 2 in fp16 (prefetching past the end of
        // the matrix is harmless: a prefetch never faults)
        const char* pf = reinterpret_cast<const char*>(w) + kPanelPrefetch;
        _mm_prefetch(pf, _MM_HINT_NTA);
        _mm_prefetch(pf + 64, _MM_HINT_NTA);
        if (sizeof(WT) == 4) {
            _mm_prefetch(pf + 128, _MM_HINT_NTA);
            _mm_prefetch(pf + 192, _MM_HINT_NTA);
        }
        const __m256 xk = _mm256_broadcast_ss(x + k);
        a0 = _mm256_fmadd_ps(xk, ld8(w), a0);
        a1 = _mm256_fmadd_ps(xk, ld8(w + 8), a1);
        a2 = _mm256_fmadd_ps(xk, ld8(w + 16), a2);
        a3 = _mm256_fmadd_ps(xk, ld8(w + 24), a3);
        a4 = _mm256_fmadd_ps(xk, ld8(w + 32), a4);
        a5 = _mm256_fmadd_ps(xk, ld8(w + 40), a5);
        a6 = _mm256_fmadd_ps(xk, ld8(w + 48), a6);
        a7 = _mm256_fmadd_ps(xk, ld8(w + 56), a7);
    }
    _mm256_storeu_ps(y, a0); _mm256_storeu_ps(y + 8, a1); _mm256_storeu_ps(y + 16, a2);
    _mm256_storeu_ps(y + 24, a3); _mm256_storeu_ps(y + 32, a4); _mm256_storeu_ps(y + 40, a5);
    _mm256_storeu_ps(y + 48, a6); _mm256_storeu_ps(y + 56, a7);
}

// MR (2 or 3) rows times one 64-column panel, in two passes of 32 columns: MR x 4 accumulators
// plus MR broadcasts fit the 16 registers, and each weight vector loaded serves every row. For
// the few streams of a lockstep group the weights still stream once per step, so the same
// non-temporal prefetch applies (one pass reads half of each 256-byte row: 2 lines).
template <int MR, typename WT>
inline void rows_panel64(const float* X, int64_t ldx, int n_in, const WT* w0, float* Y, int64_t ldy) {
    static_assert(MR == 2 || MR == 3, "rows_panel64: 2 or 3 rows");
    const float* x0p = X;
    const float* x1p = X + ldx;
    const float* x2p = X + (MR > 2 ? 2 * ldx : 0);
    for (int half = 0; half < 2; ++half) {
        const WT* w = w0 + 32 * half;
        float* y0 = Y + 32 * half;
        float* y1 = y0 + ldy;
        float* y2 = y0 + (MR > 2 ? 2 * ldy : 0);
        // named accumulators (an array of them is kept on the stack by GCC: see tile16)
        __m256 a00 = _mm256_loadu_ps(y0), a01 = _mm256_loadu_ps(y0 + 8), a02 = _mm256_loadu_ps(y0 + 16), a03 = _mm256_loadu_ps(y0 + 24);
        __m256 a10 = _mm256_loadu_ps(y1), a11 = _mm256_loadu_ps(y1 + 8), a12 = _mm256_loadu_ps(y1 + 16), a13 = _mm256_loadu_ps(y1 + 24);
        __m256 a20 = _mm256_setzero_ps(), a21 = a20, a22 = a20, a23 = a20;
        if (MR > 2) {
            a20 = _mm256_loadu_ps(y2); a21 = _mm256_loadu_ps(y2 + 8); a22 = _mm256_loadu_ps(y2 + 16); a23 = _mm256_loadu_ps(y2 + 24);
        }
        for (int k = 0; k < n_in; ++k, w += 64) {
            const char* pf = reinterpret_cast<const char*>(w) + kPanelPrefetch;
            _mm_prefetch(pf, _MM_HINT_NTA);
            if (sizeof(WT) == 4) _mm_prefetch(pf + 64, _MM_HINT_NTA);
            const __m256 x0 = _mm256_broadcast_ss(x0p + k), x1 = _mm256_broadcast_ss(x1p + k);
            const __m256 x2 = MR > 2 ? _mm256_broadcast_ss(x2p + k) : _mm256_setzero_ps();
            __m256 wv = ld8(w);
            a00 = _mm256_fmadd_ps(x0, wv, a00); a10 = _mm256_fmadd_ps(x1, wv, a10);
            if (MR > 2) a20 = _mm256_fmadd_ps(x2, wv, a20);
            wv = ld8(w + 8);
            a01 = _mm256_fmadd_ps(x0, wv, a01); a11 = _mm256_fmadd_ps(x1, wv, a11);
            if (MR > 2) a21 = _mm256_fmadd_ps(x2, wv, a21);
            wv = ld8(w + 16);
            a02 = _mm256_fmadd_ps(x0, wv, a02); a12 = _mm256_fmadd_ps(x1, wv, a12);
            if (MR > 2) a22 = _mm256_fmadd_ps(x2, wv, a22);
            wv = ld8(w + 24);
            a03 = _mm256_fmadd_ps(x0, wv, a03); a13 = _mm256_fmadd_ps(x1, wv, a13);
            if (MR > 2) a23 = _mm256_fmadd_ps(x2, wv, a23);
        }
        _mm256_storeu_ps(y0, a00); _mm256_storeu_ps(y0 + 8, a01); _mm256_storeu_ps(y0 + 16, a02); _mm256_storeu_ps(y0 + 24, a03);
        _mm256_storeu_ps(y1, a10); _mm256_storeu_ps(y1 + 8, a11); _mm256_storeu_ps(y1 + 16, a12); _mm256_storeu_ps(y1 + 24, a13);
        if (MR > 2) {
            _mm256_storeu_ps(y2, a20); _mm256_storeu_ps(y2 + 8, a21); _mm256_storeu_ps(y2 + 16, a22); _mm256_storeu_ps(y2 + 24, a23);
        }
    }
}

template <typename WT>
void gemm_panels_t(const float* X, int B, int ldx, int K, const WT* Wp, int N, float* Y, int ldy) {
    for (int p = 0; p * 64 < N; ++p) {
        const int w = std::min(64, N - p * 64);
        const WT* wp = Wp + static_cast<size_t>(p) * K * 64;
        float* yp = Y + p * 64;
        int q = 0;
        if (w == 64 && (B == 2 || B == 3)) {
            if (B == 2) rows_panel64<2>(X, ldx, K, wp, yp, ldy);
            else rows_panel64<3>(X, ldx, K, wp, yp, ldy);
            continue;
        }
        if (B == 1) {
            if (w == 64) { axpy_panel64(X, K, wp, yp); continue; }
            for (; q + 16 <= w; q += 16) axpy_block<2>(X, K, wp + q, 64, yp + q);
        } else {
            for (; q + 16 <= w; q += 16) tile16_rows<WT>(X, ldx, B, K, wp + q, 64, yp + q, ldy);
        }
        for (int b = 0; b < B; ++b)
            for (int j = q; j < w; ++j) {
                float acc = yp[static_cast<int64_t>(b) * ldy + j];
                for (int k = 0; k < K; ++k) acc += X[static_cast<int64_t>(b) * ldx + k] * ld1(wp + static_cast<size_t>(k) * 64 + j);
                yp[static_cast<int64_t>(b) * ldy + j] = acc;
            }
    }
}

void gemm_panels(const float* X, int B, int ldx, int K, const float* Wp, int N, float* Y, int ldy) {
    gemm_panels_t(X, B, ldx, K, Wp, N, Y, ldy);
}

void gemm_panels_h(const float* X, int B, int ldx, int K, const uint16_t* Wp, int N, float* Y, int ldy) {
    gemm_panels_t(X, B, ldx, K, Wp, N, Y, ldy);
}

// Block-sparse products (sparse.h). Batch 1: a group of 4 whole strips (64 columns) at a time,
// 8 accumulators as in axpy_panel64, each strip walking its own blocks (a group's strips hold
// equally many); the rest a strip at a time, up to 4 rows x 2 accumulators. Every column sums its
// nonzero terms by fma in increasing k, as the dense kernels do.
template <typename WT>
inline void sparse_group4(const float* x, const SparseBlocks& S, const WT* w, int s, float* y) {
    constexpr int P = SparseBlocks::kStrip;
    const int64_t nb = S.start[s + 1] - S.start[s];
    const int32_t* k0 = S.kidx.data() + S.start[s];
    const int32_t* k1 = S.kidx.data() + S.start[s + 1];
    const int32_t* k2 = S.kidx.data() + S.start[s + 2];
    const int32_t* k3 = S.kidx.data() + S.start[s + 3];
    const WT* w0 = w + S.start[s] * P;
    const WT* w1 = w + S.start[s + 1] * P;
    const WT* w2 = w + S.start[s + 2] * P;
    const WT* w3 = w + S.start[s + 3] * P;
    __m256 a0 = _mm256_loadu_ps(y), a1 = _mm256_loadu_ps(y + 8), a2 = _mm256_loadu_ps(y + 16);
    __m256 a3 = _mm256_loadu_ps(y + 24), a4 = _mm256_loadu_ps(y + 32), a5 = _mm256_loadu_ps(y + 40);
    __m256 a6 = _mm256_loadu_ps(y + 48), a7 = _mm256_loadu_ps(y + 56);
    for (int64_t i = 0; i < nb; ++i) {
        const __m256 x0 = _mm256_broadcast_ss(x + k0[i]), x1 = _mm256_broadcast_ss(x + k1[i]);
        const __m256 x2 = _mm256_broadcast_ss(x + k2[i]), x3 = _mm256_broadcast_ss(x + k3[i]);
        const int64_t o = i * P;
        a0 = _mm256_fmadd_ps(x0, ld8(w0 + o), a0);
        a1 = _mm256_fmadd_ps(x0, ld8(w0 + o + 8), a1);
        a2 = _mm256_fmadd_ps(x1, ld8(w1 + o), a2);
        a3 = _mm256_fmadd_ps(x1, ld8(w1 + o + 8), a3);
        a4 = _mm256_fmadd_ps(x2, ld8(w2 + o), a4);
        a5 = _mm256_fmadd_ps(x2, ld8(w2 + o + 8), a5);
        a6 = _mm256_fmadd_ps(x3, ld8(w3 + o), a6);
        a7 = _mm256_fmadd_ps(x3, ld8(w3 + o + 8), a7);
    }
    _mm256_storeu_ps(y, a0); _mm256_storeu_ps(y + 8, a1); _mm256_storeu_ps(y + 16, a2);
    _mm256_storeu_ps(y + 24, a3); _mm256_storeu_ps(y + 32, a4); _mm256_storeu_ps(y + 40, a5);
    _mm256_storeu_ps(y + 48, a6); _mm256_storeu_ps(y + 56, a7);
}

// MR rows x one strip (nc <= 16 columns; a partial strip goes through a zero-padded copy of Y)
template <int MR, typename WT>
inline void sparse_strip(const float* X, int64_t ldx, const SparseBlocks& S, const WT* w, int s, float* Y, int64_t ldy,
                         int nc) {
    constexpr int P = SparseBlocks::kStrip;
    float yv[MR][P] = {};
    for (int r = 0; r < MR; ++r)
        for (int i = 0; i < nc; ++i) yv[r][i] = Y[r * ldy + i];
    __m256 a[MR][2];
    AGF_UNROLL2 for (int r = 0; r < MR; ++r) a[r][0] = _mm256_loadu_ps(yv[r]), a[r][1] = _mm256_loadu_ps(yv[r] + 8);
    for (int64_t b = S.start[s]; b < S.start[s + 1]; ++b) {
        const int k = S.kidx[b];
        const __m256 v0 = ld8(w + b * P), v1 = ld8(w + b * P + 8);
        AGF_UNROLL2 for (int r = 0; r < MR; ++r) {
            const __m256 xr = _mm256_broadcast_ss(X + r * ldx + k);
            a[r][0] = _mm256_fmadd_ps(xr, v0, a[r][0]);
            a[r][1] = _mm256_fmadd_ps(xr, v1, a[r][1]);
        }
    }
    AGF_UNROLL2 for (int r = 0; r < MR; ++r) _mm256_storeu_ps(yv[r], a[r][0]), _mm256_storeu_ps(yv[r] + 8, a[r][1]);
    for (int r = 0; r < MR; ++r)
        for (int i = 0; i < nc; ++i) Y[r * ldy + i] = yv[r][i];
}

template <typename WT>
void gemm_sparse_t(const float* X, int B, int ldx, const SparseBlocks& S, const WT* w, float* Y, int ldy) {
    constexpr int P = SparseBlocks::kStrip, G = SparseBlocks::kGroup;
    const int ns = S.strips();
    int s = 0;
    if (B == 1)
        for (; s + G <= ns && (s + G) * P <= S.N; s += G) sparse_group4(X, S, w, s, Y + s * P);
    for (; s < ns; ++s) {
        const int nc = std::min(P, S.N - s * P);
        int r = 0;
        for (; r + 4 <= B; r += 4) sparse_strip<4>(X + static_cast<int64_t>(r) * ldx, ldx, S, w, s, Y + static_cast<int64_t>(r) * ldy + s * P, ldy, nc);
        const float* xr = X + static_cast<int64_t>(r) * ldx;
        float* yr = Y + static_cast<int64_t>(r) * ldy + s * P;
        if (B - r == 3) sparse_strip<3>(xr, ldx, S, w, s, yr, ldy, nc);
        else if (B - r == 2) sparse_strip<2>(xr, ldx, S, w, s, yr, ldy, nc);
        else if (B - r == 1) sparse_strip<1>(xr, ldx, S, w, s, yr, ldy, nc);
    }
}

void gemm_sparse(const float* X, int B, int ldx, const SparseBlocks& S, const float* w, float* Y, int ldy) {
    gemm_sparse_t(X, B, ldx, S, w, Y, ldy);
}

void gemm_sparse_h(const float* X, int B, int ldx, const SparseBlocks& S, const uint16_t* w, float* Y, int ldy) {
    gemm_sparse_t(X, B, ldx, S, w, Y, ldy);
}

void gemm_cols(const float* X, int B, int ldx, int n_in, const float* W, int ld, int c0, int c1, float* Y, int ldy) {
    if (B == 1) return axpy_cols(X, n_in, W, ld, c0, c1, Y);
    const int n = c1 - c0;
    int i = 0;
    for (; i + 16 <= n; i += 16) tile16_rows(X, ldx, B, n_in, W + c0 + i, ld, Y + i, ldy);
    for (int b = 0; b < B; ++b)
        for (int j = i; j < n; ++j) {
            float acc = Y[static_cast<int64_t>(b) * ldy + j];
            for (int k = 0; k < n_in; ++k) acc += X[static_cast<int64_t>(b) * ldx + k] * W[static_cast<int64_t>(k) * ld + c0 + j];
            Y[static_cast<int64_t>(b) * ldy + j] = acc;
        }
}

void gru_update(const float* gi, const float* gh, float* h, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 r = sigmoid8(_mm256_add_ps(_mm256_loadu_ps(gi + i), _mm256_loadu_ps(gh + i)));
        const __m256 u = sigmoid8(_mm256_add_ps(_mm256_loadu_ps(gi + n + i), _mm256_loadu_ps(gh + n + i)));
        const __m256 c = tanh8(_mm256_fmadd_ps(r, _mm256_loadu_ps(gh + 2 * n + i), _mm256_loadu_ps(gi + 2 * n + i)));
        const __m256 hv = _mm256_loadu_ps(h + i);
        _mm256_storeu_ps(h + i, _mm256_fmadd_ps(u, _mm256_sub_ps(hv, c), c));
    }
    for (; i < n; ++i) {
        const float r = sigm(gi[i] + gh[i]);
        const float u = sigm(gi[n + i] + gh[n + i]);
        const float c = std::tanh(gi[2 * n + i] + r * gh[2 * n + i]);
        h[i] = c + u * (h[i] - c);
    }
}

float exp_sum(const float* x, int n, float m, float* e) {
    const __m256 mv = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
        _mm256_storeu_ps(e + i, v);
        acc = _mm256_add_ps(acc, v);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, acc);
    float s = 0.0f;
    for (float v : lanes) s += v;
    for (; i < n; ++i) {
        e[i] = std::exp(x[i] - m);
        s += e[i];
    }
    return s;
}

}  // namespace

const Kernels& avx2_kernels() {
    static const Kernels k{"avx2", axpy_cols, axpy_cols_h, gemm_cols, gemm_packed, gemm_packed_set, gemm_panels, gemm_panels_h, gemm_sparse, gemm_sparse_h, gate_ts, gate_st, gru_update, exp_sum};
    return k;
}

bool avx2_compiled() { return true; }

}  // namespace agf

#else  // no AVX2 / FMA / F16C in this build (not x86-64): the portable kernels serve every CPU

namespace agf {
const Kernels& avx2_kernels() { return portable_kernels(); }
bool avx2_compiled() { return false; }
}  // namespace agf

#endif
