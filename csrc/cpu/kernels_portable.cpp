#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/cpu_features.h"
#include "cpu/kernels.h"

namespace agf {

float half_to_float(uint16_t h) {
    const uint32_t sign = (h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            exp = 1;
            while (!(man & 0x400u)) { man <<= 1; --exp; }
            man &= 0x3ffu;
            bits = sign | ((exp + 112) << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

uint16_t float_to_half(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
    uint32_t man = x & 0x7fffffu;
    if (((x >> 23) & 0xff) == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (man ? 0x200u : 0));
    if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
    if (exp <= 0) {                                                 // subnormal or zero
        if (exp < -10) return static_cast<uint16_t>(sign);
        man |= 0x800000u;
        const int shift = 14 - exp;
        uint32_t h = man >> shift;
        const uint32_t rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) ++h;
        return static_cast<uint16_t>(sign | h);
    }
    uint32_t h = (static_cast<uint32_t>(exp) << 10) | (man >> 13);
    const uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;  // may carry into the exponent: correct
    return static_cast<uint16_t>(sign | h);
}

namespace {

inline float wval(float w) { return w; }
#if defined(__aarch64__)
// the hardware conversion (exact, as half_to_float), which the vectoriser can use (fcvtl)
inline float wval(uint16_t h) {
    __fp16 f;
    std::memcpy(&f, &h, 2);
    return static_cast<float>(f);
}
#else
inline float wval(uint16_t h) { return half_to_float(h); }
#endif

void axpy_cols_h(const float* x, int n_in, const uint16_t* W, int ld, int c0, int c1, float* y) {
    const int n = c1 - c0;
    for (int k = 0; k < n_in; ++k) {
        const float xk = x[k];
        const uint16_t* w = W + static_cast<int64_t>(k) * ld + c0;
        for (int i = 0; i < n; ++i) y[i] += xk * half_to_float(w[i]);
    }
}

void axpy_cols(const float* x, int n_in, const float* W, int ld, int c0, int c1, float* y) {
    const int n = c1 - c0;
    for (int k = 0; k < n_in; ++k) {
        const float xk = x[k];
        const float* w = W + static_cast<int64_t>(k) * ld + c0;
        for (int i = 0; i < n; ++i) y[i] += xk * w[i];
    }
}

inline float sigm(float v) { return 1.0f / (1.0f + std::exp(-v)); }

void gemm_cols(const float* X, int B, int ldx, int n_in, const float* W, int ld, int c0, int c1, float* Y, int ldy) {
    for (int b = 0; b < B; ++b) axpy_cols(X + static_cast<int64_t>(b) * ldx, n_in, W, ld, c0, c1, Y + static_cast<int64_t>(b) * ldy);
}

// Register tiles for whatever SIMD the target has, written with GCC / Clang vector types (4 floats:
// one NEON register on aarch64, one SSE register on baseline x86-64) rather than intrinsics: MR
// rows x NV vectors of accumulators, the k loop outermost, each step one weight row of 4 NV
// contiguous floats times MR broadcast inputs. Loops of constant trip count, unrolled, so the
// accumulators stay in registers. The sum over k runs in order, one multiply-add per k, as in the
// AVX2 kernels (on aarch64 the compiler fuses it into one fmla).
//
// Why: the first version (one row, a float acc[16], the rest left to the vectoriser) ran the
// DiffWave GEMM at a tenth of the AVX2 kernel's rate on x86 (GCC vectorised its k loop as
// reductions, with shuffles), so D1 took 18x the AVX2 loop's time with AGF_CPU_KERNELS=portable;
// on aarch64, which has only these kernels, the same code gave 4 vector multiply-adds.
#define AGF_UNROLL _Pragma("GCC unroll 16")
typedef float v4f __attribute__((vector_size(16)));
#if defined(__aarch64__)
constexpr int kTileRows = 4;  // 4 rows x 4 vectors = 16 of NEON's 32 registers
constexpr int kMatvecVecs = 16;  // one row x 64 columns: 16 registers, 16 independent chains
#else
constexpr int kTileRows = 2;  // SSE2 has 16 registers: 8 accumulators
constexpr int kMatvecVecs = 8;
#endif

inline v4f load4(const float* p) {
    v4f v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline v4f load4(const uint16_t* p) { return v4f{wval(p[0]), wval(p[1]), wval(p[2]), wval(p[3])}; }
inline void store4(float* p, v4f v) { std::memcpy(p, &v, sizeof v); }

// Y[MR, nc] (rows ldy apart) = init + X[MR, K] W[K, 4 NV] (W rows ws apart, zero past column nc),
// where init is the row `init` (bias, zeros) if given, else Y itself
template <int MR, int NV, typename WT>
inline void tile(const float* X, int64_t ldx, int K, const WT* w, int64_t ws, float* Y, int64_t ldy, int nc,
                 const float* init) {
    constexpr int NC = 4 * NV;
    v4f acc[MR][NV];
    if (nc == NC) {
        AGF_UNROLL for (int r = 0; r < MR; ++r)
            AGF_UNROLL for (int j = 0; j < NV; ++j) acc[r][j] = load4(init ? init + 4 * j : Y + r * ldy + 4 * j);
    } else {  // the matrix's last columns: through a zero-padded copy
        for (int r = 0; r < MR; ++r) {
            float y[NC] = {};
            for (int i = 0; i < nc; ++i) y[i] = init ? init[i] : Y[r * ldy + i];
            AGF_UNROLL for (int j = 0; j < NV; ++j) acc[r][j] = load4(y + 4 * j);
        }
    }
    for (int k = 0; k < K; ++k) {
        const WT* wk = w + k * ws;
        v4f wv[NV];
        AGF_UNROLL for (int j = 0; j < NV; ++j) wv[j] = load4(wk + 4 * j);
        AGF_UNROLL for (int r = 0; r < MR; ++r) {
            const float xr = X[r * ldx + k];
            AGF_UNROLL for (int j = 0; j < NV; ++j) acc[r][j] += xr * wv[j];
        }
    }
    if (nc == NC) {
        AGF_UNROLL for (int r = 0; r < MR; ++r)
            AGF_UNROLL for (int j = 0; j < NV; ++j) store4(Y + r * ldy + 4 * j, acc[r][j]);
    } else {
        for (int r = 0; r < MR; ++r) {
            float y[NC];
            AGF_UNROLL for (int j = 0; j < NV; ++j) store4(y + 4 * j, acc[r][j]);
            for (int i = 0; i < nc; ++i) Y[r * ldy + i] = y[i];
        }
    }
}

// rows x nc of Y from a 16-column strip of panel rows (ws apart): kTileRows rows at a time
template <typename WT>
inline void strip16(const float* X, int ldx, int rows, int K, const WT* w, int64_t ws, float* Y, int ldy, int nc,
                    const float* init) {
    int r = 0;
    for (; r + kTileRows <= rows; r += kTileRows)
        tile<kTileRows, 4>(X + static_cast<int64_t>(r) * ldx, ldx, K, w, ws, Y + static_cast<int64_t>(r) * ldy, ldy,
                            nc, init);
    for (; r < rows; ++r)
        tile<1, 4>(X + static_cast<int64_t>(r) * ldx, ldx, K, w, ws, Y + static_cast<int64_t>(r) * ldy, ldy, nc, init);
}

void gemm_packed(const float* X, int rows, int ldx, int K, const float* Wp, int N, float* Y, int ldy) {
    for (int p = 0; p * 16 < N; ++p)
        strip16(X, ldx, rows, K, Wp + static_cast<size_t>(p) * K * 16, 16, Y + p * 16, ldy, std::min(16, N - p * 16), nullptr);
}

void gemm_packed_set(const float* X, int rows, int ldx, int K, const float* Wp, int N, const float* bias, float* Y,
                     int ldy) {
    static const float zeros[16] = {};
    for (int p = 0; p * 16 < N; ++p)
        strip16(X, ldx, rows, K, Wp + static_cast<size_t>(p) * K * 16, 16, Y + p * 16, ldy, std::min(16, N - p * 16),
                bias ? bias + p * 16 : zeros);
}

template <typename WT>
void gemm_panels_t(const float* X, int B, int ldx, int K, const WT* Wp, int N, float* Y, int ldy) {
    for (int p = 0; p * 64 < N; ++p) {
        const int w = std::min(64, N - p * 64);
        const WT* wp = Wp + static_cast<size_t>(p) * K * 64;
        float* yp = Y + p * 64;
        if (B == 1) {  // matrix-vector: one row, kMatvecVecs independent accumulators
            for (int q = 0; q < w; q += 4 * kMatvecVecs)
                tile<1, kMatvecVecs>(X, ldx, K, wp + q, 64, yp + q, ldy, std::min(4 * kMatvecVecs, w - q), nullptr);
        } else {
            for (int q = 0; q < w; q += 16) strip16(X, ldx, B, K, wp + q, 64, yp + q, ldy, std::min(16, w - q), nullptr);
        }
    }
}

void gemm_panels(const float* X, int B, int ldx, int K, const float* Wp, int N, float* Y, int ldy) {
    gemm_panels_t(X, B, ldx, K, Wp, N, Y, ldy);
}

void gemm_panels_h(const float* X, int B, int ldx, int K, const uint16_t* Wp, int N, float* Y, int ldy) {
    gemm_panels_t(X, B, ldx, K, Wp, N, Y, ldy);
}

// Block-sparse product (sparse.h), one 16-column strip and one row at a time: 4 vectors of
// accumulators, each block one weight row of the strip times the row's input at the block's k, as
// tile() does it for every k (so the same multiply-adds on the nonzero terms, in the same order).
template <typename WT>
void gemm_sparse_t(const float* X, int B, int ldx, const SparseBlocks& S, const WT* w, float* Y, int ldy) {
    constexpr int P = SparseBlocks::kStrip;
    for (int s = 0; s < S.strips(); ++s) {
        const int nc = std::min(P, S.N - s * P);
        const int64_t b0 = S.start[s], b1 = S.start[s + 1];
        for (int r = 0; r < B; ++r) {
            const float* x = X + static_cast<int64_t>(r) * ldx;
            float* y = Y + static_cast<int64_t>(r) * ldy + s * P;
            float yv[P] = {};
            for (int i = 0; i < nc; ++i) yv[i] = y[i];
            v4f acc[4];
            AGF_UNROLL for (int j = 0; j < 4; ++j) acc[j] = load4(yv + 4 * j);
            for (int64_t b = b0; b < b1; ++b) {
                const float xr = x[S.kidx[b]];
                const WT* wb = w + b * P;
                v4f wv[4];
                AGF_UNROLL for (int j = 0; j < 4; ++j) wv[j] = load4(wb + 4 * j);
                AGF_UNROLL for (int j = 0; j < 4; ++j) acc[j] += xr * wv[j];
            }
            AGF_UNROLL for (int j = 0; j < 4; ++j) store4(yv + 4 * j, acc[j]);
            for (int i = 0; i < nc; ++i) y[i] = yv[i];
        }
    }
}

void gemm_sparse(const float* X, int B, int ldx, const SparseBlocks& S, const float* w, float* Y, int ldy) {
    gemm_sparse_t(X, B, ldx, S, w, Y, ldy);
}

void gemm_sparse_h(const float* X, int B, int ldx, const SparseBlocks& S, const uint16_t* w, float* Y, int ldy) {
    gemm_sparse_t(X, B, ldx, S, w, Y, ldy);
}

void gru_update(const float* gi, const float* gh, float* h, int n) {
    for (int i = 0; i < n; ++i) {
        const float r = sigm(gi[i] + gh[i]);
        const float u = sigm(gi[n + i] + gh[n + i]);
        const float c = std::tanh(gi[2 * n + i] + r * gh[2 * n + i]);
        h[i] = c + u * (h[i] - c);
    }
}

void gate_ts(const float* a, const float* b, float* z, int n) {
    for (int i = 0; i < n; ++i) z[i] = std::tanh(a[i]) * sigm(b[i]);
}

void gate_st(const float* a, const float* b, float* z, int n) {
    for (int i = 0; i < n; ++i) z[i] = sigm(a[i]) * std::tanh(b[i]);
}

float exp_sum(const float* x, int n, float m, float* e) {
    float s = 0.0f;
    for (int i = 0; i < n; ++i) {
        e[i] = std::exp(x[i] - m);
        s += e[i];
    }
    return s;
}

}  // namespace

const Kernels& portable_kernels() {
    static const Kernels k{"portable", axpy_cols, axpy_cols_h, gemm_cols, gemm_packed, gemm_packed_set, gemm_panels, gemm_panels_h, gemm_sparse, gemm_sparse_h, gate_ts, gate_st, gru_update, exp_sum};
    return k;
}

const Kernels& kernels() {
    static const Kernels* chosen = [] {
        if (kernels_forced("portable")) return &portable_kernels();
        if (avx2_available()) return &avx2_kernels();
        return &portable_kernels();
    }();
    return *chosen;
}

}  // namespace agf
