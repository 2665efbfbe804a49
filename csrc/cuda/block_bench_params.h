// Parameters of block_bench.cuh (the block-wide product floor, the warp sampler harness), plain
// C++ for the bindings: the checks here run before any launch.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>

namespace agf {
namespace bb {

struct MatvecParams {
    const void* w;     // [NU * NR][ncols] weights (fp32 / fp16 / bf16 bits), ncols a multiple of 8
    const float* x;    // [ncols]
    float* y;          // [NU * NR] the last iteration's result (NR = 2: y[2u] = the gate of unit u, y[2u+1] = 0)
    long long* ticks;  // [1] clock ticks of the whole loop (thread 0)
    int NU, NR, ncols, iters;
    int fixed;         // 1: the compile-time-shaped product (matvec_fixed), 256 threads, W1's shapes only;
                       // 2: the same with each thread's weights in registers (a layer's two shapes)
};

// weights, then x and y, all in the block's dynamic shared memory
inline size_t matvec_smem(const MatvecParams& p, size_t wbytes) {
    return (static_cast<size_t>(p.NU) * p.NR * p.ncols * wbytes + 15) / 16 * 16 +
           (static_cast<size_t>(p.ncols) + static_cast<size_t>(p.NU) * p.NR) * sizeof(float);
}

inline MatvecParams make_matvec_params(std::uintptr_t w, std::uintptr_t x, std::uintptr_t y, std::uintptr_t ticks,
                                       int NU, int NR, int ncols, int iters, int wtype, int threads, int fixed) {
    if (NU < 1 || (NR != 1 && NR != 2) || ncols < 8 || ncols % 8 || iters < 1)
        throw std::invalid_argument("matvec_bench: need NU >= 1, NR 1 or 2, ncols a positive multiple of 8, iters >= 1");
    if (wtype < 0 || wtype > 2) throw std::invalid_argument("matvec_bench: wtype must be 0 (fp32), 1 (fp16) or 2 (bf16)");
    if (threads < 32 || threads > 256 || threads % 32)
        throw std::invalid_argument("matvec_bench: threads must be a multiple of 32 in [32, 256]");
    if (!w || !x || !y || !ticks) throw std::invalid_argument("matvec_bench: null pointer");
    MatvecParams p{reinterpret_cast<const void*>(w), reinterpret_cast<const float*>(x), reinterpret_cast<float*>(y),
                   reinterpret_cast<long long*>(ticks), NU, NR, ncols, iters, fixed < 0 || fixed > 2 ? -1 : fixed};
    if (p.fixed < 0) throw std::invalid_argument("matvec_bench: fixed must be 0, 1 or 2 (registers)");
    if (fixed && threads != 256) throw std::invalid_argument("matvec_bench: the fixed-shape products are built for 256 threads");
    if (matvec_smem(p, wtype == 0 ? 4 : 2) > 227 * 1024)
        throw std::invalid_argument("matvec_bench: the weights do not fit one block's shared memory (227 KB)");
    return p;
}

struct SamplerParams {
    const float* logits;  // [rows][n]
    const float* u;       // [rows]
    int* out;             // [rows] class
    int* fell_back;       // [rows] 1 where the double-precision rule decided
    int n;
};

inline SamplerParams make_sampler_params(std::uintptr_t logits, std::uintptr_t u, std::uintptr_t out,
                                         std::uintptr_t fell_back, int rows, int n) {
    if (rows < 0 || n < 1) throw std::invalid_argument("warp_sampler: need rows >= 0 and n >= 1");
    if (rows > 0 && (!logits || !u || !out || !fell_back)) throw std::invalid_argument("warp_sampler: null pointer");
    return SamplerParams{reinterpret_cast<const float*>(logits), reinterpret_cast<const float*>(u),
                         reinterpret_cast<int*>(out), reinterpret_cast<int*>(fell_back), n};
}

}  // namespace bb
}  // namespace agf
