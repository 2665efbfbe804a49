// bfloat16 products for the CPU loops: Y = bias + X W (or Y += X W) with X and W rounded to
// bf16 (round to nearest even) and fp32 accumulation.
//
// Why: on CPUs with AVX512-BF16 (AMD Zen 4, Intel Cooper Lake / Sapphire Rapids) one
// vdpbf16ps does 32 multiply-adds where an fp32 FMA does 16: measured here (Zen 4 VM, 12
// independent chains, one core) 116 vs 58 G multiply-adds/s. The compute-bound DiffWave
// loop (csrc/cpu/diffwave.cpp) runs its products this way when asked for dtype bfloat16.
//
// The arithmetic is defined exactly, so every implementation gives the same bits: k runs in
// pairs (2j, 2j+1), and per pair acc = fma(x[2j], w[2j], fma(x[2j+1], w[2j+1], acc)) in fp32
// (a product of two bf16 values is exact in fp32, so each step is one rounding), with subnormal
// values flushed to signed zero (the starting accumulator, and each step's result). That is what
// vdpbf16ps computes (checked bit for bit against this rule on 3.2 M random lanes here, and the
// flushes on crafted subnormal cases; Intel's pseudo-code says the same). gemm_emulated is that rule in plain C++: the reference of the
// native kernel (tests compare them bit for bit) and the path on CPUs without the instruction.
//
// Layouts (uint32 words, each two bf16: element 2j in the low half, 2j+1 in the high half):
//   X pairs [rows, K2] (row stride ldx words), K2 = ceil(K / 2), an odd K padded with a zero;
//   W in panels of 16 columns, each panel [K2, 16] words contiguous (the last one zero-padded).
#pragma once
#include <cstdint>
#include <cstring>

namespace agf {
namespace bf16 {

// fp32 -> bf16 bits, round to nearest even; subnormal inputs become a signed zero (as
// vcvtne2ps2bf16 does here). Finite inputs (validated upstream).
inline uint16_t round(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}
inline float value(uint16_t h) {
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline int pairs(int K) { return (K + 1) / 2; }

// X [rows, K] fp32 (row stride ldx floats) -> pairs [rows, K2] (row stride ldo words)
inline void pack_rows(const float* X, int rows, int K, int64_t ldx, uint32_t* out, int64_t ldo) {
    for (int r = 0; r < rows; ++r) {
        const float* x = X + r * ldx;
        uint32_t* o = out + r * ldo;
        int k = 0;
        for (; k + 1 < K; k += 2) o[k / 2] = round(x[k]) | (static_cast<uint32_t>(round(x[k + 1])) << 16);
        if (k < K) o[k / 2] = round(x[k]);
    }
}

// words of columns [0, n) of a [K, *] weight in 16-column panels
inline size_t panel_words(int K, int n) { return static_cast<size_t>((n + 15) / 16) * pairs(K) * 16; }

// W [K, ld] columns c0..c1 -> 16-column panels of pairs (dst: panel_words(K, c1 - c0) words)
inline void pack_panels(const float* W, int K, int ld, int c0, int c1, uint32_t* dst) {
    const int n = c1 - c0, K2 = pairs(K);
    for (int p = 0; p * 16 < n; ++p)
        for (int j = 0; j < K2; ++j)
            for (int i = 0; i < 16; ++i) {
                const int c = p * 16 + i;
                uint32_t v = 0;
                if (c < n) {
                    v = round(W[static_cast<int64_t>(2 * j) * ld + c0 + c]);
                    if (2 * j + 1 < K) v |= static_cast<uint32_t>(round(W[static_cast<int64_t>(2 * j + 1) * ld + c0 + c])) << 16;
                }
                dst[(static_cast<size_t>(p) * K2 + j) * 16 + i] = v;
            }
}

// Y [rows, N] (row stride ldy floats): set -> Y = bias + X W (bias null: zeros), else Y += X W.
// Wp: pack_panels of a [K, N] weight (K2 = pairs(K)).
using PackSig = void(const float* X, int rows, int K, int64_t ldx, uint32_t* out, int64_t ldo);
using GemmSig = void(const uint32_t* X, int rows, int64_t ldx, int K2, const uint32_t* Wp, int N, const float* bias,
                     bool set, float* Y, int64_t ldy);
using PackFn = PackSig*;
using GemmFn = GemmSig*;

// each in versions with the same bits: the rule in plain C++ (pack_rows above, gemm_emulated in
// bf16.cpp: the reference of the others and the path on CPUs with neither instruction set),
// AVX512-BF16 (bf16_avx512bf16.cpp; call only when native_available()) and AVX2 + FMA
// (products_avx2.cpp; call only when avx2_available())
GemmSig gemm_emulated, gemm_native, gemm_avx2;
PackSig pack_rows_native, pack_rows_avx2;

bool native_compiled();   // the build's compiler had -mavx512bf16
bool native_available();  // compiled, and this CPU (and OS) runs AVX512-BF16
// the native kernel where available, else the AVX2 one, else the emulation, as far as
// AGF_CPU_KERNELS / AGF_CPU_PRODUCTS allow (cpu_features.h)
GemmFn gemm();
PackFn packer_for(GemmFn g);  // the packer of g's instruction set (the same bits either way)
PackFn packer();              // packer_for(gemm())

// Y [rows, N] (row stride ldy) += X [rows, K] (row stride ldx, fp32) @ Wp: X rounded into
// `scratch` (at least rows * pairs(K) words) by packer(), then gemm()
inline void accumulate(const float* X, int rows, int K, int64_t ldx, const uint32_t* Wp, int N, float* Y, int64_t ldy,
                       uint32_t* scratch) {
    const int K2 = pairs(K);
    packer()(X, rows, K, ldx, scratch, K2);
    gemm()(scratch, rows, K2, K2, Wp, N, nullptr, false, Y, ldy);
}
const char* gemm_name();  // avx512bf16, avx2 or emulated

}  // namespace bf16
}  // namespace agf
