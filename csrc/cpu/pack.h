// Packing helpers shared by the model loops: each thread gets its own contiguous copy of the
// weight columns it works on.
#pragma once
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <vector>

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

// The panel layout of Kernels::gemm_packed: columns c0..c1 of W [K, ld] in panels of 16
// columns, panel p = [K, 16] contiguous (the last one zero-padded). Size: panel_floats().
constexpr int kPanel = 16;
inline size_t panel_floats(int K, int n) { return static_cast<size_t>((n + kPanel - 1) / kPanel) * K * kPanel; }

inline void pack_panels(const float* W, int K, int ld, int c0, int c1, float* dst) {
    const int n = c1 - c0;
    for (int p = 0; p * kPanel < n; ++p) {
        const int w = std::min(kPanel, n - p * kPanel);
        float* d = dst + static_cast<size_t>(p) * K * kPanel;
        for (int k = 0; k < K; ++k) {
            std::memcpy(d + static_cast<size_t>(k) * kPanel, W + static_cast<int64_t>(k) * ld + c0 + p * kPanel, w * sizeof(float));
            std::memset(d + static_cast<size_t>(k) * kPanel + w, 0, (kPanel - w) * sizeof(float));
        }
    }
}

}  // namespace agf
