// Floors of what a persistent kernel's block does between two hand-offs (benchmarks/NOTES_GPU.md),
// and a harness for the warp sampler:
//   matvec_bench_kernel: one block runs `iters` block-wide products y = W x with the kernels' own
//     block_matvec, each followed by a barrier (a layer's critical path is two of these: the
//     current-tap product with the gate as its epilogue, NR = 2, then the residual product, NR = 1);
//     W [NU * NR][ncols] is copied to shared memory first, x is fp32 in shared memory. Thread 0
//     counts the clock ticks of the loop: ticks / iters = one product + barrier on this GPU.
//   warp_sampler_kernel: block b (one warp) samples row b of logits [rows][n] with
//     warp_inverse_cdf_fast and records whether the double-precision rule decided.
// Both are also compiled by the CPU emulator (csrc/cuda_emu_bindings.cpp), where tests check the
// products' values and the sampler against the float64 reference.
#pragma once
#include <cstddef>
#include <cstdint>

#include "compat.h"
#include "kernel_common.cuh"
#include "block_bench_params.h"

namespace agf {
namespace bb {

template <class WK, int NR>
AGF_KERNEL void AGF_LAUNCH_BOUNDS(256) matvec_bench_kernel(const MatvecParams p) {
    using WT = typename WK::T;
    const int tid = agf_tid(), NT = agf_nthreads();
    unsigned char* sm = static_cast<unsigned char*>(agf_smem());
    WT* ws = reinterpret_cast<WT*>(sm);
    const size_t wel = static_cast<size_t>(p.NU) * NR * p.ncols;
    float* xs = reinterpret_cast<float*>(sm + (wel * sizeof(WT) + 15) / 16 * 16);
    float* ys = xs + p.ncols;
    copy_to_smem(ws, p.w, wel * sizeof(WT));
    for (int i = tid; i < p.ncols; i += NT) xs[i] = p.x[i];
    agf_sync();
    const long long t0 = agf_clock();
    for (int it = 0; it < p.iters; ++it) {
        block_matvec<WK, 1, NR>(ws, p.ncols, 0, 1, p.NU, p.ncols, xs, p.ncols, 0, 1, [&](int u, int, const float* a) {
            if constexpr (NR == 2) {
                ys[2 * u] = tanhf(a[0]) * sigmoidf_(a[1]);
                ys[2 * u + 1] = 0.0f;
            } else {
                ys[u] = a[0];
            }
        });
        agf_sync();
    }
    if (tid == 0) p.ticks[0] = agf_clock() - t0;
    for (int i = tid; i < p.NU * NR; i += NT) p.y[i] = ys[i];
}

AGF_KERNEL void warp_sampler_kernel(const SamplerParams p) {
    const int row = agf_bid();
    bool fb = false;
    const int k = warp_inverse_cdf_fast(p.logits + static_cast<size_t>(row) * p.n, p.n, p.u[row], &fb);
    if (agf_tid() == 0) {
        p.out[row] = k;
        p.fell_back[row] = fb ? 1 : 0;
    }
}

}  // namespace bb
}  // namespace agf
