// The int8 product's exact rule in plain C++ (see int8.h), weight packing and the choice of kernel.
#include "cpu/int8.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "cpu/cpu_features.h"

namespace agf {
namespace int8 {

void column_scales(const float* W, int K, int ld, int c0, int c1, float* out) {
    for (int c = c0; c < c1; ++c) {
        float m = 0.0f;
        for (int k = 0; k < K; ++k) m = std::max(m, std::fabs(W[static_cast<int64_t>(k) * ld + c]));
        out[c - c0] = m / 127.0f;
    }
}

void pack_weights(const float* W, int K, int ld, int c0, int c1, Weights& out, const float* scales) {
    // |sum_k u q| <= 255 * 127 * K must stay inside int32
    if (K < 1 || K > kMaxK) throw std::invalid_argument("int8 product: K (inputs) must be in [1, 66000]");
    const int n = c1 - c0, K4 = quads(K), np = (n + 15) / 16;
    out.K = K, out.N = n;
    out.w.assign(static_cast<size_t>(np) * K4 * 16, 0u);
    out.scale.assign(static_cast<size_t>(np) * 16, 0.0f);
    out.csum.assign(static_cast<size_t>(np) * 16, 0);
    std::vector<float> own;
    if (!scales) {
        own.resize(n);
        column_scales(W, K, ld, c0, c1, own.data());
        scales = own.data();
    }
    for (int c = 0; c < n; ++c) {
        const float sw = scales[c];
        out.scale[c] = sw;
        if (!(sw > 0.0f)) continue;  // an all-zero column: q = 0
        int32_t cs = 0;
        uint32_t* panel = out.w.data() + static_cast<size_t>(c / 16) * K4 * 16 + c % 16;
        for (int k = 0; k < K; ++k) {
            const float qf = std::nearbyint(W[static_cast<int64_t>(k) * ld + c0 + c] / sw);
            const int32_t q = static_cast<int32_t>(std::min(127.0f, std::max(-127.0f, qf)));
            cs += q;
            panel[static_cast<size_t>(k / 4) * 16] |= (static_cast<uint32_t>(q) & 0xffu) << (8 * (k % 4));
        }
        out.csum[c] = cs;
    }
}

void quantize_rows_in_range(const float* X, int rows, int K, int64_t ldx, const float* lo, const float* hi,
                            uint32_t* out, int64_t ldo, float* s, int32_t* zp) {
    const int K4 = quads(K);
    for (int r = 0; r < rows; ++r) {
        const float* x = X + r * ldx;
        uint32_t* o = out + r * ldo;
        float inv;
        row_params(lo[r], hi[r], &s[r], &inv, &zp[r]);
        std::memset(o, 0, K4 * sizeof(uint32_t));
        if (s[r] == 0.0f) continue;
        quantize_elements(x, 0, K, inv, zp[r], o);
    }
}

void quantize_rows(const float* X, int rows, int K, int64_t ldx, uint32_t* out, int64_t ldo, float* s, int32_t* zp) {
    for (int r = 0; r < rows; ++r) {  // each row's own range, then the rule above
        const float* x = X + r * ldx;
        float lo = 0.0f, hi = 0.0f;
        for (int k = 0; k < K; ++k) lo = std::min(lo, x[k]), hi = std::max(hi, x[k]);
        quantize_rows_in_range(x, 1, K, ldx, &lo, &hi, out + r * ldo, ldo, s + r, zp + r);
    }
}

namespace {
// one quad's share of the rule: 4 u8 (x) times 4 s8 (w), summed exactly
inline int32_t dot4(uint32_t xv, uint32_t wv) {
    int32_t acc = 0;
    for (int t = 0; t < 4; ++t)
        acc += static_cast<int32_t>((xv >> (8 * t)) & 0xffu) * static_cast<int32_t>(static_cast<int8_t>(wv >> (8 * t)));
    return acc;
}
}  // namespace

void gemm_emulated(const uint32_t* X, int rows, int64_t ldx, const float* s, const int32_t* zp, const Weights& W,
                   const float* bias, bool set, float* Y, int64_t ldy) {
    const int K4 = quads(W.K);
    for (int r = 0; r < rows; ++r) {
        const uint32_t* x = X + r * ldx;
        float* y = Y + r * ldy;
        for (int c = 0; c < W.N; ++c) {
            const uint32_t* w = W.w.data() + static_cast<size_t>(c / 16) * K4 * 16 + c % 16;
            int32_t acc = -zp[r] * W.csum[c];
            for (int j = 0; j < K4; ++j) acc += dot4(x[j], w[static_cast<size_t>(j) * 16]);
            const float base = set ? (bias ? bias[c] : 0.0f) : y[c];
            const float sc = s[r] * W.scale[c];
            y[c] = std::fma(static_cast<float>(acc), sc, base);
        }
    }
}

bool sparsify(Weights& W, double min_zero) {
    if (W.sparse()) return true;
    const int K4 = quads(W.K), np = (W.N + 15) / 16;
    SparseBlocks S;
    S.K = K4, S.N = W.N;
    S.start.assign(np + 1, 0);
    for (int p = 0; p < np; ++p) {
        for (int j = 0; j < K4; ++j) {
            const uint32_t* q = W.w.data() + (static_cast<size_t>(p) * K4 + j) * 16;
            if (std::any_of(q, q + 16, [](uint32_t v) { return v != 0u; })) S.kidx.push_back(j);
        }
        S.start[p + 1] = static_cast<int32_t>(S.kidx.size());
    }
    const double total = static_cast<double>(np) * K4;
    if (total > 0 ? 1.0 - S.blocks() / total < min_zero : min_zero > 0.0) return false;  // (no quads: 0% zero)
    std::vector<uint32_t> kept(static_cast<size_t>(S.blocks()) * 16);
    for (int p = 0; p < np; ++p)
        for (int32_t i = S.start[p]; i < S.start[p + 1]; ++i)
            std::copy_n(W.w.data() + (static_cast<size_t>(p) * K4 + S.kidx[i]) * 16, 16, kept.data() + static_cast<size_t>(i) * 16);
    W.w.swap(kept);
    W.sp = std::move(S);
    return true;
}

// the rule of gemm_emulated over the kept quads only (the skipped ones add 0 to exact sums)
void gemm_sparse_emulated(const uint32_t* X, int rows, int64_t ldx, const float* s, const int32_t* zp,
                          const Weights& W, const float* bias, bool set, float* Y, int64_t ldy) {
    for (int r = 0; r < rows; ++r) {
        const uint32_t* x = X + r * ldx;
        float* y = Y + r * ldy;
        for (int c = 0; c < W.N; ++c) {
            int32_t acc = -zp[r] * W.csum[c];
            for (int32_t i = W.sp.start[c / 16]; i < W.sp.start[c / 16 + 1]; ++i)
                acc += dot4(x[W.sp.kidx[i]], W.w[static_cast<size_t>(i) * 16 + c % 16]);
            const float base = set ? (bias ? bias[c] : 0.0f) : y[c];
            y[c] = std::fma(static_cast<float>(acc), s[r] * W.scale[c], base);
        }
    }
}

bool neon_available() { return neon_compiled() && cpu_features().asimddp; }

bool native_available() {
    const CpuFeatures& f = cpu_features();
    return native_compiled() && f.avx512f && f.avx512bw && f.avx512vnni;
}

// chosen once per process (as kernels() is): AVX512-VNNI, else AVX2, else the emulation, as far
// as AGF_CPU_KERNELS / AGF_CPU_PRODUCTS allow (cpu_features.h)
GemmFn gemm() {
    static const GemmFn chosen = [] {
        const ProductIsa most = products_allowed();
        if (most >= ProductIsa::avx512 && native_available()) return gemm_native;
        if (most >= ProductIsa::avx2 && avx2_available()) return gemm_avx2;
        if (most >= ProductIsa::avx2 && neon_available()) return gemm_neon;
        return gemm_emulated;
    }();
    return chosen;
}
QuantFn quantizer_for(GemmFn g) {
    return g == gemm_native ? quantize_rows_native
           : g == gemm_avx2 ? quantize_rows_avx2
           : g == gemm_neon ? quantize_rows_neon : quantize_rows;
}
RangeQuantFn range_quantizer_for(GemmFn g) {
    return g == gemm_native ? quantize_rows_in_range_native
           : g == gemm_avx2 ? quantize_rows_in_range_avx2
           : g == gemm_neon ? quantize_rows_in_range_neon : quantize_rows_in_range;
}
QuantFn quantizer() {
    static const QuantFn chosen = quantizer_for(gemm());
    return chosen;
}
RangeQuantFn range_quantizer() {
    static const RangeQuantFn chosen = range_quantizer_for(gemm());
    return chosen;
}
GemmFn gemm_sparse() {
    static const GemmFn chosen =
        products_allowed() >= ProductIsa::avx2 && avx2_available() ? gemm_sparse_avx2 : gemm_sparse_emulated;
    return chosen;
}
bool sparse_fast() { return gemm_sparse() != gemm_sparse_emulated; }
const char* gemm_name() {
    const GemmFn g = gemm();
    return g == gemm_native ? "avx512vnni" : g == gemm_avx2 ? "avx2" : g == gemm_neon ? "neon-dotprod" : "emulated";
}

}  // namespace int8
}  // namespace agf
