#include <cmath>
#include <cstdlib>
#include <cstring>

#include "cpu/cpu_features.h"
#include "cpu/kernels.h"

namespace agf {
namespace {

void axpy_cols(const float* x, int n_in, const float* W, int ld, int c0, int c1, float* y) {
    const int n = c1 - c0;
    for (int k = 0; k < n_in; ++k) {
        const float xk = x[k];
        const float* w = W + static_cast<int64_t>(k) * ld + c0;
        for (int i = 0; i < n; ++i) y[i] += xk * w[i];
    }
}

inline float sigm(float v) { return 1.0f / (1.0f + std::exp(-v)); }

void gate_ts(const float* a, const float* b, float* z, int n) {
    for (int i = 0; i < n; ++i) z[i] = std::tanh(a[i]) * sigm(b[i]);
}

void gate_st(const float* a, const float* b, float* z, int n) {
    for (int i = 0; i < n; ++i) z[i] = sigm(a[i]) * std::tanh(b[i]);
}

}  // namespace

const Kernels& portable_kernels() {
    static const Kernels k{"portable", axpy_cols, gate_ts, gate_st};
    return k;
}

const Kernels& kernels() {
    static const Kernels* chosen = [] {
        const char* env = std::getenv("AGF_CPU_KERNELS");
        if (env && std::strcmp(env, "portable") == 0) return &portable_kernels();
        const auto& f = cpu_features();
        if (f.avx2 && f.fma) return &avx2_kernels();
        return &portable_kernels();
    }();
    return *chosen;
}

}  // namespace agf
