// int8 products for the CPU loops: Y = bias + X W (or Y += X W) with W quantised to int8 per
// output column and each row of X quantised to uint8 on the fly, integer sums, fp32 scaling.
//
// Why: the WaveRNN step at batch 1 is a chain of mat-vecs whose weights (3.4 M for R2) stream
// from L3 every sample; bf16 weights (6.8 MB) run it at ~14-15 k samples/s here, short of real
// time. int8 halves the bytes again, and vpdpbusd (AVX512-VNNI: 64 u8 x s8 multiply-adds into 16
// int32 lanes) does 4x the fp32 FMA rate (228-232 vs 56-59 G/s per core on this Zen 4 VM).
// LPCNet's CPU vocoder uses the same idea (8-bit weights, unsigned 8-bit activations, AVX2).
//
// The arithmetic is defined exactly, so every implementation gives the same bits:
//   weights (once, at pack time), per column n of W [K, N]:
//     sw[n] = max_k |W[k, n]| / 127 (fp32 division; 0 for an all-zero column),
//     q[k, n] = clamp(nearbyint(W[k, n] / sw[n]), -127, 127) (0 where sw[n] is 0),
//     csum[n] = sum_k q[k, n];
//   activations, per row x [K] of X (affine, zero exactly representable, as torch's dynamic
//   quantisation does, but with the full 8 bits: vpdpbusd cannot saturate):
//     lo = min(0, min x), hi = max(0, max x), s = (hi - lo) / 255 (fp32),
//     s == 0: every u = 0, zp = 0;  else inv = 1 / s, zp = clamp(nearbyint(-lo * inv), 0, 255),
//     u[k] = clamp(nearbyint(x[k] * inv) + zp, 0, 255)   (nearbyint: round half to even);
//   product: acc[n] = sum_k u[k] q[k, n] - zp csum[n]  (exact in int32 for K <= kMaxK = 66,000),
//     y[n] = fma(float(acc[n]), s * sw[n], base[n])  (float(): round to nearest; s * sw[n] one
//     fp32 product; base: the bias, 0, or y[n] to accumulate).
// gemm_emulated is that rule in plain C++ (the native kernel's reference, bit-equal in tests, and
// the path on CPUs without AVX512-VNNI).
//
// Layouts (uint32 words, each four bytes: element 4j in the lowest byte ... 4j+3 in the highest):
//   X quads [rows, K4] (row stride ldx words), K4 = ceil(K / 4), padded with zero bytes;
//   W in panels of 16 columns, each panel [K4, 16] words contiguous; sw and csum padded with
//   zeros to a multiple of 16 columns (padded weight bytes are 0, so padded u bytes add nothing).
//
// Block-sparse weights (sparsify): a panel keeps only its quad rows holding a nonzero byte, each a
// 16-output x 4-input block (64 bytes: one zmm, vpdpbusd's operand), in sparse.h's layout with
// quads for rows (W.sp.kidx: each block's quad index; W.w: [blocks][16] words, the panels' blocks
// in order). LPCNet's sparse GRU uses 8 x 4 blocks for the same reason: 4 consecutive inputs are
// what one u8 x s8 dot product consumes. The product skips the zero quads; its integer sums are
// exact, so the result has the dense product's bits (and any summation order gives them).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cpu/sparse.h"

namespace agf {
namespace int8 {

inline int quads(int K) { return (K + 3) / 4; }
constexpr int kMaxK = 66000;  // the int32 sums' limit: 255 * 127 * K < 2^31

struct Weights {
    int K = 0, N = 0;
    std::vector<uint32_t> w;     // panels, ceil(N / 16) * K4 * 16 words (sparse: [blocks][16])
    std::vector<float> scale;    // sw, padded to a multiple of 16
    std::vector<int32_t> csum;   // column sums of q, padded likewise
    SparseBlocks sp;             // sp.K > 0 (= K4): block-sparse, w holds only the nonzero quad rows
    bool sparse() const { return sp.K > 0; }
};

// dense W -> its block-sparse form (the nonzero quad rows of each panel; same product bits) if at
// least min_zero of its quad rows (16 columns x 4 inputs) are all zero; returns whether it did
bool sparsify(Weights& W, double min_zero = 0.0);

// the scales of columns c0..c1 of W [K, ld]: max_k |W[k, c]| / 127 (out[c - c0])
void column_scales(const float* W, int K, int ld, int c0, int c1, float* out);

// columns c0..c1 of W [K, ld] (fp32) -> quantised panels, with each column's own scale, or with
// scales[c - c0] where given: a slice of rows then quantises as the whole matrix does (the
// WaveNet loop splits some products by input rows over its threads)
void pack_weights(const float* W, int K, int ld, int c0, int c1, Weights& out, const float* scales = nullptr);

// one row's quantisation parameters from its range (lo <= 0 <= hi): s, 1 / s and zp; a range
// under FLT_MIN quantises to zeros (s = 0). Shared by both quantisers, so they agree bit for bit.
static inline void row_params(float lo, float hi, float* s, float* inv, int32_t* zp) {
    const float sv = (hi - lo) / 255.0f;
    if (!(sv >= 1.17549435e-38f)) {  // also catches NaN
        *s = 0.0f, *inv = 0.0f, *zp = 0;
        return;
    }
    const float iv = 1.0f / sv;
    const float z = std::nearbyint(-lo * iv);
    *s = sv, *inv = iv, *zp = static_cast<int32_t>(z < 0.0f ? 0.0f : (z > 255.0f ? 255.0f : z));
}

// elements k0 .. K-1 of a row x by the activation rule (scale 1 / inv, zero point zp) into its
// quads o, whose bits there are zero: the plain code, and the SIMD quantisers' last elements.
// static: every file keeps its own copy, compiled for its own instruction set (an inline function
// shared by files with different -m flags could end up running AVX2 code on any CPU).
static inline void quantize_elements(const float* x, int k0, int K, float inv, int32_t zp, uint32_t* o) {
    for (int k = k0; k < K; ++k) {
        const int32_t u = std::min(255, std::max(0, static_cast<int32_t>(std::nearbyint(x[k] * inv)) + zp));
        o[k / 4] |= static_cast<uint32_t>(u) << (8 * (k % 4));
    }
}

// X [rows, K] fp32 (row stride ldx floats) -> u8 quads [rows, K4] (row stride ldo words), one
// scale s and zero point zp per row
using QuantSig = void(const float* X, int rows, int K, int64_t ldx, uint32_t* out, int64_t ldo, float* s, int32_t* zp);
// the same rule with each row's range given (lo[r] <= 0 <= hi[r]) instead of read off the row: a
// part of a row then quantises as the whole row (with its range), or every row on a fixed range
using RangeQuantSig = void(const float* X, int rows, int K, int64_t ldx, const float* lo, const float* hi,
                           uint32_t* out, int64_t ldo, float* s, int32_t* zp);
// Y [rows, W.N] (row stride ldy floats): set -> Y = bias + X W (bias null: zeros), else Y += X W.
// X: a quantiser's output (K4 = quads(W.K) words per row, ldx apart) with its s and zp.
using GemmSig = void(const uint32_t* X, int rows, int64_t ldx, const float* s, const int32_t* zp, const Weights& W,
                     const float* bias, bool set, float* Y, int64_t ldy);
using QuantFn = QuantSig*;
using RangeQuantFn = RangeQuantSig*;
using GemmFn = GemmSig*;

// each in versions with the same bits: the rule in plain C++ (int8.cpp: the reference of the
// others and the path on CPUs with no kernel below), AVX512-VNNI (int8_avx512vnni.cpp; call only
// when native_available()), AVX2 + FMA (products_avx2.cpp; call only when avx2_available()) and
// aarch64 DotProd (int8_neon.cpp; call only when neon_available())
QuantSig quantize_rows, quantize_rows_native, quantize_rows_avx2, quantize_rows_neon;
RangeQuantSig quantize_rows_in_range, quantize_rows_in_range_native, quantize_rows_in_range_avx2,
    quantize_rows_in_range_neon;
GemmSig gemm_emulated, gemm_native, gemm_avx2, gemm_neon;
// the product with block-sparse W (W.sparse()): the rule in plain C++ and on AVX2 (products_avx2.cpp,
// also the kernel on AVX512-VNNI CPUs: any quantiser's quads are the same bytes)
GemmSig gemm_sparse_emulated, gemm_sparse_avx2;

bool native_compiled();   // the build's compiler had -mavx512vnni
bool native_available();  // compiled, and this CPU (and OS) runs AVX512-VNNI
bool neon_compiled();     // the build's compiler had -march=armv8.2-a+dotprod (aarch64)
bool neon_available();    // compiled, and this CPU has the dot-product instructions
// the native kernel where available, else the AVX2 or the aarch64 one, else the emulation, as far
// as AGF_CPU_KERNELS / AGF_CPU_PRODUCTS allow (cpu_features.h; the aarch64 kernel counts as the
// "avx2" level: allowed unless the products are capped at "emulated")
GemmFn gemm();
QuantFn quantizer_for(GemmFn g);             // the quantiser of g's instruction set
RangeQuantFn range_quantizer_for(GemmFn g);  // likewise
QuantFn quantizer();                         // quantizer_for(gemm())
RangeQuantFn range_quantizer();              // range_quantizer_for(gemm())
const char* gemm_name();  // avx512vnni, avx2, neon-dotprod or emulated
GemmFn gemm_sparse();      // the AVX2 sparse kernel where allowed and available, else the emulation
bool sparse_fast();        // gemm_sparse() is a SIMD kernel (where not, the loops keep int8 weights dense)

// per-thread scratch of the loops: quantised rows and their scales / zero points
struct Scratch {
    std::vector<uint32_t> q;
    std::vector<float> s;
    std::vector<int32_t> zp;
    void reserve(int rows, int K) {
        q.assign(static_cast<size_t>(rows) * quads(K), 0);
        s.assign(rows, 0.0f);
        zp.assign(rows, 0);
    }
};

// X [rows, K] (row stride ldx, fp32) quantised into the scratch (sized for at least rows x K) by
// quantizer(): the input of one or more products with K-row weights (accumulate_quantized)
inline void quantize_into(const float* X, int rows, int K, int64_t ldx, Scratch& sc) {
    quantizer()(X, rows, K, ldx, sc.q.data(), quads(K), sc.s.data(), sc.zp.data());
}

// quantize_into with each row's range given (quantize_rows_in_range)
inline void quantize_in_range_into(const float* X, int rows, int K, int64_t ldx, const float* lo, const float* hi,
                                   Scratch& sc) {
    range_quantizer()(X, rows, K, ldx, lo, hi, sc.q.data(), quads(K), sc.s.data(), sc.zp.data());
}

// Y [rows, W.N] (row stride ldy) += (the rows quantize_into left in sc) @ W
inline void accumulate_quantized(const Scratch& sc, int rows, const Weights& W, float* Y, int64_t ldy) {
    if (W.N <= 0 || rows <= 0) return;
    (W.sparse() ? gemm_sparse() : gemm())(sc.q.data(), rows, quads(W.K), sc.s.data(), sc.zp.data(), W, nullptr, false,
                                          Y, ldy);
}

// Y [rows, W.N] (row stride ldy) += X [rows, W.K] (row stride ldx, fp32) @ W: both steps above
inline void accumulate(const float* X, int rows, int64_t ldx, const Weights& W, float* Y, int64_t ldy, Scratch& sc) {
    if (W.N <= 0 || rows <= 0) return;
    quantize_into(X, rows, W.K, ldx, sc);
    accumulate_quantized(sc, rows, W, Y, ldy);
}

}  // namespace int8
}  // namespace agf
