// Block-sparse weights for the matrix products of the recurrent loops (WaveRNN's GRUs and fc layers),
// the structure of Sparse WaveRNN (Kalchbrenner et al. 2018: 16 x 1 blocks, 16 outputs sharing one
// input) and LPCNet (block-sparse GRU-A): a pruned checkpoint's zero blocks cost nothing.
//
// A [K, N] weight (input-major, as the loops apply it: Y[b, :] += X[b, :] @ W) is cut into strips of
// 16 output columns; a block is one input row k of a strip (16 weights). A strip keeps only its
// blocks with a nonzero weight, in increasing k, each block's 16 weights contiguous (the last strip
// zero-padded past N). Within each group of 4 whole strips (64 columns, aligned at a multiple of 4)
// every strip holds the same number of blocks, the shorter ones padded with all-zero blocks, so the
// batch-1 kernel can run the 4 strips' 8 accumulators side by side.
//
// Same bits as the dense product: every output column still sums its nonzero terms one fma (or
// multiply-add, as the kernel set's dense product does) at a time in increasing k, starting from Y;
// what is left out, and what the padding adds, are terms x * 0 = +-0, which leave a sum unchanged
// (a zero sum may change the sign of its zero: the same value). The tests compare the audio bit
// for bit with the dense kernels (tests/test_cpp_wavernn.py).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace agf {

struct SparseBlocks {
    static constexpr int kStrip = 16;  // output columns per block
    static constexpr int kGroup = 4;   // strips per batch-1 group
    int K = 0, N = 0;
    std::vector<int32_t> start;  // [strips + 1]: the first block of each strip
    std::vector<int32_t> kidx;   // [blocks]: each block's input row
    int strips() const { return (N + kStrip - 1) / kStrip; }
    int64_t blocks() const { return start.empty() ? 0 : start.back(); }
};

// Each 16-column strip's input rows holding a nonzero weight of a [K, n] matrix (ld n), in
// increasing k: what build_sparse stores, and (its share of all K x strips blocks) whether to.
inline std::vector<std::vector<int32_t>> nonzero_blocks(const float* W, int K, int n) {
    constexpr int P = SparseBlocks::kStrip;
    const int ns = (n + P - 1) / P;
    std::vector<std::vector<int32_t>> rows(ns);
    for (int s = 0; s < ns; ++s) {
        const int c1 = std::min(n, (s + 1) * P);
        for (int k = 0; k < K; ++k) {
            bool nz = false;
            for (int c = s * P; c < c1 && !nz; ++c) nz = W[static_cast<int64_t>(k) * n + c] != 0.0f;
            if (nz) rows[s].push_back(k);
        }
    }
    return rows;
}

inline double zero_block_fraction(const std::vector<std::vector<int32_t>>& rows, int K) {
    int64_t kept = 0;
    for (const auto& r : rows) kept += static_cast<int64_t>(r.size());
    const double total = static_cast<double>(K) * rows.size();
    return total > 0 ? 1.0 - kept / total : 0.0;
}

// W [K, n] (ld n) and its nonzero_blocks -> S (structure) and w ([blocks][16] weights as WT, via conv).
template <typename WT, typename Conv>
void build_sparse(const float* W, int K, int n, const std::vector<std::vector<int32_t>>& rows, SparseBlocks& S,
                  std::vector<WT>& w, Conv conv) {
    constexpr int P = SparseBlocks::kStrip, G = SparseBlocks::kGroup;
    S.K = K, S.N = n;
    const int ns = S.strips();
    // pad each group of 4 whole strips to its longest strip (pads: zero weights at row 0)
    std::vector<int> len(ns);
    for (int s = 0; s < ns; ++s) len[s] = static_cast<int>(rows[s].size());
    for (int g = 0; (g + 1) * G <= ns && (g + 1) * G * P <= n; ++g) {
        int m = 0;
        for (int s = g * G; s < (g + 1) * G; ++s) m = std::max(m, len[s]);
        for (int s = g * G; s < (g + 1) * G; ++s) len[s] = m;
    }
    S.start.assign(ns + 1, 0);
    for (int s = 0; s < ns; ++s) S.start[s + 1] = S.start[s] + len[s];
    S.kidx.assign(S.blocks(), 0);
    w.assign(static_cast<size_t>(S.blocks()) * P, conv(0.0f));
    for (int s = 0; s < ns; ++s) {
        const int c1 = std::min(n, (s + 1) * P);
        for (size_t i = 0; i < rows[s].size(); ++i) {
            const int64_t b = S.start[s] + static_cast<int64_t>(i);
            const int k = rows[s][i];
            S.kidx[b] = k;
            for (int c = s * P; c < c1; ++c) w[b * P + (c - s * P)] = conv(W[static_cast<int64_t>(k) * n + c]);
        }
    }
}

}  // namespace agf
