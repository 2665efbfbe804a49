// Floors of what a persistent kernel's block does between two hand-offs (benchmarks/NOTES_GPU.md),
// and a harness for the warp sampler:
//   matvec_bench_kernel: one block runs `iters` block-wide products y = W x with the kernels' own
//     block_matvec (or, for SHAPE > 0, matvec_fixed at one of FIXED_SHAPES; for SHAPE > N_FIXED,
//     matvec_fixed_regs with each thread's weights in registers, a layer's two shapes), each followed by a
//     barrier (a layer's critical path is two of these: the current-tap product with the gate as
//     its epilogue, NR = 2, then the residual product, NR = 1);
//     W [NU * NR][ncols] is copied to shared memory first, x is fp32 in shared memory. Thread 0
//     counts the clock ticks of the loop: ticks / iters = one product + barrier on this GPU.
//   warp_sampler_kernel: block b (one warp) samples row b of logits [rows][n] with
//     warp_inverse_cdf_fast and records whether the double-precision rule decided.
// Both are also compiled by the CPU emulator (csrc/cuda_emu_bindings.cpp), where tests check the
// products' values and the sampler against the float64 reference.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "compat.h"
#include "kernel_common.cuh"
#include "block_bench_params.h"

namespace agf {
namespace bb {

// the shapes with a compile-time (matvec_fixed) instance: W1's per-layer products and output stack
// (rows, cols, NR); the kernel takes SHAPE = index + 1 (0: the run-time matvec), and for the first
// N_REGS of them (the layer's critical products) SHAPE = N_FIXED + index + 1 with the weights in
// registers (matvec_fixed_regs, the WaveNet kernel's register instance)
struct FixedShape {
    int rows, cols, nr;
};
constexpr FixedShape FIXED_SHAPES[] = {{128, 64, 2}, {64, 64, 1}, {128, 64, 1}, {128, 128, 1}, {256, 128, 1}};
constexpr int N_FIXED = sizeof(FIXED_SHAPES) / sizeof(FIXED_SHAPES[0]);
constexpr int N_REGS = 2;

template <class WK, int NR, int SHAPE>
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
    long long t0 = 0;
    auto epi = [&](int u, int, const float* a) {
        if constexpr (NR == 2) {
            ys[2 * u] = tanhf(a[0]) * sigmoidf_(a[1]);
            ys[2 * u + 1] = 0.0f;
        } else {
            ys[u] = a[0];
        }
    };
    auto timed = [&](auto product) {
        t0 = agf_clock();
        for (int it = 0; it < p.iters; ++it) {
            product();
            agf_sync();
        }
    };
    if constexpr (SHAPE == 0) {
        timed([&] { block_matvec<WK, 1, NR>(ws, p.ncols, 0, 1, p.NU, p.ncols, xs, p.ncols, 0, 1, epi); });
    } else if constexpr (SHAPE <= N_FIXED) {
        constexpr FixedShape f = FIXED_SHAPES[SHAPE - 1];
        static_assert(f.nr == NR, "an instance's NR is its shape's");
        timed([&] { matvec_fixed<WK, NR, f.rows / f.nr, f.cols, 256>(ws, xs, epi); });
    } else {
        constexpr FixedShape f = FIXED_SHAPES[SHAPE - N_FIXED - 1];
        static_assert(f.nr == NR && SHAPE <= N_FIXED + N_REGS, "a register instance of a layer's shape");
        RegSlice<WK, NR, f.rows / f.nr, f.cols, 256> rs;  // loaded before the clock starts
        rs.load(ws);
        timed([&] { matvec_fixed_regs(rs, xs, epi); });
    }
    if (tid == 0) p.ticks[0] = agf_clock() - t0;
    for (int i = tid; i < p.NU * NR; i += NT) p.y[i] = ys[i];
}

// Host side: calls go(WK(), NR, SHAPE) (the last two std::integral_constant) for p's kernel instance.
template <class Go>
void matvec_dispatch(const MatvecParams& p, int wtype, Go go) {
    int shape = 0;
    for (int i = 0; p.fixed && i < N_FIXED; ++i)
        if (FIXED_SHAPES[i].rows == p.NU * p.NR && FIXED_SHAPES[i].cols == p.ncols && FIXED_SHAPES[i].nr == p.NR) shape = i + 1;
    if (p.fixed && shape == 0) throw std::invalid_argument("matvec_bench: no fixed-shape instance for this shape (FIXED_SHAPES)");
    if (p.fixed == 2) {
        if (shape > N_REGS) throw std::invalid_argument("matvec_bench: register weights for a layer's two shapes only (128 x 64 gate, 64 x 64)");
        shape += N_FIXED;
    }
    auto typed = [&](auto nr, auto sh) {
        if (wtype == 0) go(F32(), nr, sh);
        else if (wtype == 1) go(F16(), nr, sh);
        else go(BF16(), nr, sh);
    };
    using One = std::integral_constant<int, 1>;
    using Two = std::integral_constant<int, 2>;
    switch (shape) {
        case 0: p.NR == 2 ? typed(Two(), std::integral_constant<int, 0>()) : typed(One(), std::integral_constant<int, 0>()); break;
        case 1: typed(Two(), std::integral_constant<int, 1>()); break;
        case 2: typed(One(), std::integral_constant<int, 2>()); break;
        case 3: typed(One(), std::integral_constant<int, 3>()); break;
        case 4: typed(One(), std::integral_constant<int, 4>()); break;
        case 5: typed(One(), std::integral_constant<int, 5>()); break;
        case 6: typed(Two(), std::integral_constant<int, 6>()); break;
        default: typed(One(), std::integral_constant<int, 7>()); break;
    }
    static_assert(N_FIXED == 5 && N_REGS == 2, "one case per fixed shape and register instance");
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
