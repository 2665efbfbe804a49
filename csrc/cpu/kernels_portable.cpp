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
inline float wval(uint16_t h) { return half_to_float(h); }

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

void gemm_packed(const float* X, int rows, int ldx, int K, const float* Wp, int N, float* Y, int ldy) {
    for (int p = 0; p * 16 < N; ++p) {
        const int w = std::min(16, N - p * 16);
        const float* wp = Wp + static_cast<size_t>(p) * K * 16;
        for (int r = 0; r < rows; ++r) {
            float acc[16];
            float* y = Y + static_cast<int64_t>(r) * ldy + p * 16;
            for (int i = 0; i < 16; ++i) acc[i] = i < w ? y[i] : 0.0f;
            const float* x = X + static_cast<int64_t>(r) * ldx;
            for (int k = 0; k < K; ++k)
                for (int i = 0; i < 16; ++i) acc[i] += x[k] * wp[k * 16 + i];
            for (int i = 0; i < w; ++i) y[i] = acc[i];
        }
    }
}

void gemm_packed_set(const float* X, int rows, int ldx, int K, const float* Wp, int N, const float* bias, float* Y,
                     int ldy) {
    for (int r = 0; r < rows; ++r)
        for (int i = 0; i < N; ++i) Y[static_cast<int64_t>(r) * ldy + i] = bias ? bias[i] : 0.0f;
    gemm_packed(X, rows, ldx, K, Wp, N, Y, ldy);
}

template <typename WT>
void gemm_panels_t(const float* X, int B, int ldx, int K, const WT* Wp, int N, float* Y, int ldy) {
    for (int p = 0; p * 64 < N; ++p) {
        const int w = std::min(64, N - p * 64);
        const WT* wp = Wp + static_cast<size_t>(p) * K * 64;
        for (int b = 0; b < B; ++b) {
            float* y = Y + static_cast<int64_t>(b) * ldy + p * 64;
            const float* x = X + static_cast<int64_t>(b) * ldx;
            for (int k = 0; k < K; ++k)
                for (int j = 0; j < w; ++j) y[j] += x[k] * wval(wp[static_cast<size_t>(k) * 64 + j]);
        }
    }
}

void gemm_panels(const float* X, int B, int ldx, int K, const float* Wp, int N, float* Y, int ldy) {
    gemm_panels_t(X, B, ldx, K, Wp, N, Y, ldy);
}

void gemm_panels_h(const float* X, int B, int ldx, int K, const uint16_t* Wp, int N, float* Y, int ldy) {
    gemm_panels_t(X, B, ldx, K, Wp, N, Y, ldy);
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
    static const Kernels k{"portable", axpy_cols, axpy_cols_h, gemm_cols, gemm_packed, gemm_packed_set, gemm_panels, gemm_panels_h, gate_ts, gate_st, gru_update, exp_sum};
    return k;
}

const Kernels& kernels() {
    static const Kernels* chosen = [] {
        if (kernels_forced("portable")) return &portable_kernels();
        const auto& f = cpu_features();
        if (f.avx2 && f.fma && avx2_compiled()) return &avx2_kernels();
        return &portable_kernels();
    }();
    return *chosen;
}

}  // namespace agf
