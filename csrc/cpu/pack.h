// Packing helpers shared by the model loops: each thread gets its own contiguous copy of the
// weight columns it works on.
#pragma once
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/kernels.h"

namespace agf {

// dst [n_in, c1 - c0] = W[:, c0:c1] (W is [n_in, ld], row-major)
inline void pack_cols(const float* W, int n_in, int ld, int c0, int c1, float* dst) {
    const int n = c1 - c0;
    for (int k = 0; k < n_in; ++k)
        std::memcpy(dst + static_cast<int64_t>(k) * n, W + static_cast<int64_t>(k) * ld + c0, n * sizeof(float));
}

inline void pack_cols(const std::vector<float>& W, int n_in, int ld, int c0, int c1, std::vector<float>& dst) {
    dst.resize(static_cast<size_t>(n_in) * (c1 - c0));
    pack_cols(W.data(), n_in, ld, c0, c1, dst.data());
}

// Panel layouts: columns c0..c1 of W [K, ld] in panels of `width` columns, panel p = [K, width]
// contiguous (the last one zero-padded). Kernels::gemm_packed takes width 16, gemm_panels 64.
// A panel streams sequentially; a strided [K, N] matrix read 16 or 64 columns at a time makes
// every block pass a strided walk over all K rows (and, for N a multiple of 128 floats, maps a
// 16-column strip onto a few L1 sets).
constexpr int kPanel = 16;
inline size_t panel_floats(int K, int n, int width = kPanel) {
    return static_cast<size_t>((n + width - 1) / width) * K * width;
}

inline void pack_panels(const float* W, int K, int ld, int c0, int c1, float* dst, int width = kPanel) {
    const int n = c1 - c0;
    for (int p = 0; p * width < n; ++p) {
        const int w = std::min(width, n - p * width);
        float* d = dst + static_cast<size_t>(p) * K * width;
        for (int k = 0; k < K; ++k) {
            std::memcpy(d + static_cast<size_t>(k) * width, W + static_cast<int64_t>(k) * ld + c0 + p * width, w * sizeof(float));
            std::memset(d + static_cast<size_t>(k) * width + w, 0, (width - w) * sizeof(float));
        }
    }
}

// In place: a [K, n] matrix (ld == n) -> 64-column panels for Kernels::gemm_panels.
inline void to_panels64(std::vector<float>& W, int K, int n) {
    std::vector<float> p(panel_floats(K, n, 64));
    pack_panels(W.data(), K, n, 0, n, p.data(), 64);
    W.swap(p);
}

// fp32 weights -> their IEEE half copy in dst; src is freed (the fp16-stored packs keep only dst)
inline void to_half(std::vector<float>& src, std::vector<uint16_t>& dst) {
    dst.resize(src.size());
    for (size_t i = 0; i < src.size(); ++i) dst[i] = float_to_half(src[i]);
    std::vector<float>().swap(src);
}

// Y[B, N] (rows ldy apart) += X[B, K] (rows ldx apart) @ W, W the 64-column panels starting `off`
// floats into whichever of wf / wh the pack holds (wh non-empty: fp16-stored weights)
inline void gemm_panels_of(const Kernels& kr, const float* X, int B, int ldx, int K, const std::vector<float>& wf,
                           const std::vector<uint16_t>& wh, size_t off, int N, float* Y, int ldy) {
    if (!wh.empty()) kr.gemm_panels_h(X, B, ldx, K, wh.data() + off, N, Y, ldy);
    else kr.gemm_panels(X, B, ldx, K, wf.data() + off, N, Y, ldy);
}

}  // namespace agf
