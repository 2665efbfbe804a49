// The bf16 product's exact rule in plain C++ (see bf16.h) and the choice of kernel.
#include "cpu/bf16.h"

#include <cfloat>
#include <cmath>
#include <cstring>

#include "cpu/cpu_features.h"

namespace agf {
namespace bf16 {

namespace {
inline float ftz(float v) { return std::fabs(v) < FLT_MIN ? std::copysign(0.0f, v) : v; }
}  // namespace

void gemm_emulated(const uint32_t* X, int rows, int64_t ldx, int K2, const uint32_t* Wp, int N, const float* bias,
                   bool set, float* Y, int64_t ldy) {
    for (int r = 0; r < rows; ++r) {
        const uint32_t* x = X + r * ldx;
        float* y = Y + r * ldy;
        for (int c = 0; c < N; ++c) {
            const uint32_t* w = Wp + static_cast<size_t>(c / 16) * K2 * 16 + c % 16;
            float acc = ftz(set ? (bias ? bias[c] : 0.0f) : y[c]);
            for (int j = 0; j < K2; ++j) {
                const uint32_t xv = x[j], wv = w[static_cast<size_t>(j) * 16];
                acc = ftz(std::fma(value(static_cast<uint16_t>(xv >> 16)), value(static_cast<uint16_t>(wv >> 16)), acc));
                acc = ftz(std::fma(value(static_cast<uint16_t>(xv)), value(static_cast<uint16_t>(wv)), acc));
            }
            y[c] = acc;
        }
    }
}

bool native_available() {
    const CpuFeatures& f = cpu_features();
    return native_compiled() && f.avx512f && f.avx512bf16;
}

// chosen once per process (as kernels() is: the loops ask for it per call): AVX512-BF16, else
// AVX2, else the emulation, as far as AGF_CPU_KERNELS / AGF_CPU_PRODUCTS allow (cpu_features.h)
GemmFn gemm() {
    static const GemmFn chosen = [] {
        const ProductIsa most = products_allowed();
        if (most >= ProductIsa::avx512 && native_available()) return gemm_native;
        if (most >= ProductIsa::avx2 && avx2_available()) return gemm_avx2;
        return gemm_emulated;
    }();
    return chosen;
}
PackFn packer_for(GemmFn g) { return g == gemm_native ? pack_rows_native : g == gemm_avx2 ? pack_rows_avx2 : pack_rows; }
PackFn packer() {
    static const PackFn chosen = packer_for(gemm());
    return chosen;
}
const char* gemm_name() { return gemm() == gemm_native ? "avx512bf16" : gemm() == gemm_avx2 ? "avx2" : "emulated"; }

}  // namespace bf16
}  // namespace agf
