// Packing helpers shared by the model loops: each thread gets its own contiguous copy of the
// weight columns it works on.
#pragma once
#include <cstdint>
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

}  // namespace agf
