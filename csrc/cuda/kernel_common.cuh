// Device helpers shared by the persistent kernels (wavenet_persistent.cuh, wavernn_persistent.cuh):
// vector loads of fp32 / fp16 / bf16 weights, the block-wide matrix-vector product, the block
// copy to shared memory, and the float64 inverse-CDF sampler of audiogen_fast/sampling.py.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "compat.h"
#include "hd.h"

#ifdef __CUDACC__
// at most n threads, and one block per SM is enough (a persistent kernel's blocks each fill an SM's
// shared memory anyway): without the 1, ptxas capped some variants at 80 or 128 registers and
// spilled inside the layer loop (sm_90a, CUDA 13: the 1-stream fp16 WaveNet kernel 36 bytes, the
// 16-stream fp32 one 204)
#define AGF_LAUNCH_BOUNDS(n) __launch_bounds__(n, 1)
#define AGF_UNROLL _Pragma("unroll")
#else
#define AGF_LAUNCH_BOUNDS(n)
#define AGF_UNROLL
#endif

namespace agf {

// f(std::integral_constant<int, 0>()), ..., f(std::integral_constant<int, N - 1>()): a loop whose
// index is a compile-time constant in each copy (register arrays indexed by it stay in registers)
template <int N, int I = 0, class F>
AGF_DEV void static_for(F&& f) {
    if constexpr (I < N) {
        f(std::integral_constant<int, I>());
        static_for<N, I + 1>(static_cast<F&&>(f));
    }
}

// an index that is an int or a std::integral_constant, as an int (the constant's own conversion is
// a host function to nvcc)
AGF_DEV int as_int(int v) { return v; }
template <int I>
AGF_DEV int as_int(std::integral_constant<int, I>) { return I; }

// weight storage: fp32, or raw 16-bit fp16 / bf16 (arithmetic is fp32 in every case)
struct F32 {
    using T = float;
};
struct F16 {
    using T = uint16_t;
};
struct BF16 {
    using T = uint16_t;
};

AGF_DEV void load8(const float* p, float w[8], F32) {
#ifdef __CUDACC__
    const float4 a = *reinterpret_cast<const float4*>(p), b = *reinterpret_cast<const float4*>(p + 4);
    w[0] = a.x; w[1] = a.y; w[2] = a.z; w[3] = a.w; w[4] = b.x; w[5] = b.y; w[6] = b.z; w[7] = b.w;
#else
    agf_emu::check_aligned(p, 16, "fp32 weight vector");
    for (int i = 0; i < 8; ++i) w[i] = p[i];
#endif
}

// 8 raw 16-bit weights as 4 words (one 16-byte load; element 2i in the low half of word i), and
// their fp32 values: load8 for fp16 / bf16 is the two in a row, and the register-resident weights
// (RegSlice) keep the words and unpack at each use
AGF_DEV void raw8(const uint16_t* p, uint32_t u[4]) {
#ifdef __CUDACC__
    const uint4 v = *reinterpret_cast<const uint4*>(p);
    u[0] = v.x; u[1] = v.y; u[2] = v.z; u[3] = v.w;
#else
    agf_emu::check_aligned(p, 16, "16-bit weight vector");
    std::memcpy(u, p, 16);
#endif
}

AGF_DEV void unpack8(const uint32_t u[4], float w[8], F16) {
    for (int i = 0; i < 4; ++i) {
#ifdef __CUDACC__
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&u[i]));
        w[2 * i] = f.x;
        w[2 * i + 1] = f.y;
#else
        w[2 * i] = agf_half2float(static_cast<uint16_t>(u[i] & 0xffffu));
        w[2 * i + 1] = agf_half2float(static_cast<uint16_t>(u[i] >> 16));
#endif
    }
}

// each bf16 is the high half of its float: a shift or a mask, no conversion
AGF_DEV void unpack8(const uint32_t u[4], float w[8], BF16) {
    for (int i = 0; i < 4; ++i) {
        w[2 * i] = agf_bits_float(u[i] << 16);
        w[2 * i + 1] = agf_bits_float(u[i] & 0xffff0000u);
    }
}

// one 16-byte load for fp16 and bf16 alike (bf16 was 8 scalar 2-byte loads before: its weights
// ran at 0.55x fp16's speed on the H200)
template <class WK>
AGF_DEV void load8(const uint16_t* p, float w[8], WK k) {
    uint32_t u[4];
    raw8(p, u);
    unpack8(u, w, k);
}

AGF_DEV void load8s(const float* x, float v[8]) {  // 8 fp32 activations from shared memory
#ifdef __CUDACC__
    const float4 a = *reinterpret_cast<const float4*>(x), b = *reinterpret_cast<const float4*>(x + 4);
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
#else
    agf_emu::check_aligned(x, 16, "activation vector");
    for (int i = 0; i < 8; ++i) v[i] = x[i];
#endif
}

// two adjacent 16-bit weights as one 32-bit word (element 0 in the low half), p 4-byte aligned
AGF_DEV uint32_t load_pair16(const uint16_t* p) {
#ifdef __CUDACC__
    return *reinterpret_cast<const uint32_t*>(p);
#else
    agf_emu::check_aligned(p, 4, "16-bit weight pair");
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
#endif
}

// two adjacent fp32 activations rounded to fp16 / bf16 and packed (the first in the low half), p
// 8-byte aligned: one 8-byte load and one paired conversion
AGF_DEV uint32_t load_pack2(const float* p, bool bf16) {
#ifdef __CUDACC__
    const float2 v = *reinterpret_cast<const float2*>(p);
    if (bf16) {
        const __nv_bfloat162 b = __floats2bfloat162_rn(v.x, v.y);
        return *reinterpret_cast<const uint32_t*>(&b);
    }
    const __half2 h = __floats2half2_rn(v.x, v.y);
    return *reinterpret_cast<const uint32_t*>(&h);
#else
    agf_emu::check_aligned(p, 8, "activation pair");
    auto to16 = [bf16](float f) -> uint32_t { return bf16 ? agf_float2bf16_bits(f) : agf_float2half_bits(f); };
    return to16(p[0]) | (to16(p[1]) << 16);
#endif
}

AGF_DEV float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

// Profile counters of the persistent kernels (their Params.prof set): at each mark thread 0 adds
// the clock ticks since its previous mark to its block's row [phases] with a fire-and-forget atomic
// (no wait, no register per phase). Marks sit after barriers, so a phase is the block's time from
// one barrier to the next as thread 0 sees it. Off (row nullptr), a mark is one uniform branch.
struct PhaseClock {
    long long* row;  // this block's row, for thread 0 only
    long long last;
    AGF_DEV explicit PhaseClock(long long* block_row)
        : row(block_row != nullptr && agf_tid() == 0 ? block_row : nullptr), last(row ? agf_clock() : 0) {}
    AGF_DEV void restart() {  // the next mark counts from here
        if (row) last = agf_clock();
    }
    AGF_DEV void mark(int phase) {
        if (row) {
            const long long now = agf_clock();
            agf_red_add(row + phase, now - last);
            last = now;
        }
    }
};

// Lanes per unit of a block-wide product: as many as still let one pass cover every unit (a pass
// costs a few dependent loads, FMAs and shuffles: fewer passes = less latency), but no more than
// 8 vectors per lane per pass, at most a warp and at most the row's vector count. A pure function
// of (NU, nvec, NT): products with equal shapes map units to the same threads.
AGF_HD constexpr int lanes_per_unit(int NU, int nvec, int NT) {
    int tpo = 1;
    while (tpo < 32 && 2 * tpo * NU <= NT) tpo *= 2;
    while (tpo < 32 && nvec > 8 * tpo) tpo *= 2;
    while (tpo > 1 && tpo > nvec) tpo >>= 1;
    return tpo;
}

// Block-wide matrix-vector products for up to MT streams.
// Unit u (of NU) owns NR consecutive rows of W (row stride ld elements); its result for stream m
// is sum over k < nsum of  W[k * mstride + row] . x[k * xstride + m * ldx + 0 .. ncols).
// tpo lanes of a warp share a unit (each reads every tpo-th 8-element vector of the row), their
// partial sums are combined with shuffles, and the lane with sub == 0 calls epi(u, m, a) with
// a[r] the result of the unit's row r.
// Every thread of the block must call it (the unit loop is uniform; shuffles stay converged).
template <class WK, int MT, int NR, class Epi>
AGF_DEV void matvec(const typename WK::T* W, int ld, ptrdiff_t mstride, int nsum, int NU, int ncols,
                    const float* x, int ldx, int xstride, int M, Epi epi) {
    const int nvec = ncols / 8;
    const int tpo = lanes_per_unit(NU, nvec, agf_nthreads());
    const int tid = agf_tid(), per = agf_nthreads() / tpo, sub = tid % tpo;
    for (int base = 0; base < NU; base += per) {
        const int u = base + tid / tpo;
        float acc[NR][MT];
        AGF_UNROLL
        for (int r = 0; r < NR; ++r)
            AGF_UNROLL
            for (int m = 0; m < MT; ++m) acc[r][m] = 0.0f;
        if (u < NU) {
            for (int k = 0; k < nsum; ++k) {
                const typename WK::T* Wk = W + k * mstride + static_cast<size_t>(u) * NR * ld;
                const float* xk = x + k * xstride;
                for (int v = sub; v < nvec; v += tpo) {
                    float w[NR][8];
                    AGF_UNROLL
                    for (int r = 0; r < NR; ++r) load8(Wk + static_cast<size_t>(r) * ld + v * 8, w[r], WK());
                    AGF_UNROLL
                    for (int m = 0; m < MT; ++m) {
                        if (m < M) {
                            float xv[8];
                            load8s(xk + m * ldx + v * 8, xv);
                            AGF_UNROLL
                            for (int r = 0; r < NR; ++r)
                                AGF_UNROLL
                                for (int i = 0; i < 8; ++i) acc[r][m] = fmaf(w[r][i], xv[i], acc[r][m]);
                        }
                    }
                }
            }
        }
        for (int off = tpo >> 1; off > 0; off >>= 1)
            AGF_UNROLL
            for (int r = 0; r < NR; ++r)
                AGF_UNROLL
                for (int m = 0; m < MT; ++m) acc[r][m] += agf_shfl_xor(acc[r][m], off);
        if (u < NU && sub == 0)
            AGF_UNROLL
            for (int m = 0; m < MT; ++m) {  // compile-time indices keep acc in registers
                if (m < M) {
                    float a[NR];
                    AGF_UNROLL
                    for (int r = 0; r < NR; ++r) a[r] = acc[r][m];
                    epi(u, m, a);
                }
            }
    }
}

// matvec for one stream with every shape a compile-time constant (NU units of NR rows, NCOLS
// columns, NT threads): the same units on the same lanes and the same order of operations, so the
// same bits as matvec, but the unit loop, the vector loop and the shuffles unroll and the index
// arithmetic folds away, where matvec recomputes its lane split and loop bounds for every product.
// The WaveNet kernel's instance for W1's sizes calls it (shape_variant); block_bench.cuh times both
// at those shapes. weights(u, r, j, v, w) puts unit u's row r, vector v (this lane's j-th) into
// w[8]: read from W (matvec_fixed) or unpacked from registers (matvec_fixed_regs).
template <class WK, int NR, int NU, int NCOLS, int NT, class Wt, class Epi>
AGF_DEV void matvec_fixed_with(Wt weights, const float* x, Epi epi) {
    static_assert(NCOLS % 8 == 0, "rows are read in 8-element vectors");
    constexpr int NVEC = NCOLS / 8, TPO = lanes_per_unit(NU, NVEC, NT), PER = NT / TPO;
    constexpr int NV = (NVEC + TPO - 1) / TPO;  // vectors per lane
    const int tid = agf_tid(), sub = tid % TPO;
    AGF_UNROLL
    for (int base = 0; base < NU; base += PER) {
        const int u = base + tid / TPO;
        float acc[NR];
        AGF_UNROLL
        for (int r = 0; r < NR; ++r) acc[r] = 0.0f;
        if (u < NU) {
            AGF_UNROLL
            for (int j = 0; j < NV; ++j) {
                const int v = sub + j * TPO;
                if (NVEC % TPO == 0 || v < NVEC) {
                    float w[NR][8], xv[8];
                    AGF_UNROLL
                    for (int r = 0; r < NR; ++r) weights(u, r, j, v, w[r]);
                    load8s(x + v * 8, xv);
                    AGF_UNROLL
                    for (int r = 0; r < NR; ++r)
                        AGF_UNROLL
                        for (int i = 0; i < 8; ++i) acc[r] = fmaf(w[r][i], xv[i], acc[r]);
                }
            }
        }
        AGF_UNROLL
        for (int off = TPO >> 1; off > 0; off >>= 1)
            AGF_UNROLL
            for (int r = 0; r < NR; ++r) acc[r] += agf_shfl_xor(acc[r], off);
        if (u < NU && sub == 0) epi(u, 0, acc);
    }
}

template <class WK, int NR, int NU, int NCOLS, int NT, class Epi>
AGF_DEV void matvec_fixed(const typename WK::T* W, const float* x, Epi epi) {
    matvec_fixed_with<WK, NR, NU, NCOLS, NT>(
        [W](int u, int r, int, int v, float* w) { load8(W + static_cast<size_t>(u * NR + r) * NCOLS + v * 8, w, WK()); },
        x, epi);
}

// The weights one thread reads in matvec_fixed<WK, NR, NU, NCOLS, NT>, loaded once and held in
// registers: raw words (4 per 8 fp16 / bf16 weights, 8 floats for fp32), unpacked at each use.
// nv-wavenet's persistent kernel keeps its weights in registers so; here the critical products of
// the WaveNet kernel's register instance (SH == 2) read no shared memory for weights. Every unit
// must sit on its own lanes in one pass (NU <= NT / TPO: W1's current tap and residual rows).
template <class WK> struct RawVec {  // fp16 / bf16
    using E = uint32_t;
    static constexpr int N = 4;
};
template <> struct RawVec<F32> {
    using E = float;
    static constexpr int N = 8;
};
AGF_DEV void raw8(const float* p, float u[8]) { load8(p, u, F32()); }
AGF_DEV void unpack8(const float u[8], float w[8], F32) {
    for (int i = 0; i < 8; ++i) w[i] = u[i];
}

template <class WK, int NR, int NU, int NCOLS, int NT>
struct RegSlice {
    static constexpr int NVEC = NCOLS / 8, TPO = lanes_per_unit(NU, NVEC, NT), NV = (NVEC + TPO - 1) / TPO;
    static_assert(NCOLS % 8 == 0 && NU <= NT / TPO, "one pass: every unit on its own lanes");
    typename RawVec<WK>::E w[NR][NV][RawVec<WK>::N];
    // this thread's vectors of W [NU * NR][NCOLS] (the same ones matvec_fixed would load)
    AGF_DEV void load(const typename WK::T* W) {
        const int tid = agf_tid(), u = tid / TPO, sub = tid % TPO;
        AGF_UNROLL
        for (int r = 0; r < NR; ++r)
            AGF_UNROLL
            for (int j = 0; j < NV; ++j) {
                const int v = sub + j * TPO;
                if (u < NU && (NVEC % TPO == 0 || v < NVEC)) raw8(W + static_cast<size_t>(u * NR + r) * NCOLS + v * 8, w[r][j]);
            }
    }
};

// matvec_fixed with the weights from a RegSlice (one pass: RegSlice's static_assert): the same
// lanes, the same order of operations, the same bits
template <class WK, int NR, int NU, int NCOLS, int NT, class Epi>
AGF_DEV void matvec_fixed_regs(const RegSlice<WK, NR, NU, NCOLS, NT>& s, const float* x, Epi epi) {
    matvec_fixed_with<WK, NR, NU, NCOLS, NT>([&s](int, int r, int j, int, float* w) { unpack8(s.w[r][j], w, WK()); },
                                             x, epi);
}

// The same product on tensor cores, for 16-bit weights and up to 16 streams (the 16 rows of an
// m16n8k16 A tile; rows >= M are zeros): Y[m][n] = sum_k X[m][k] W[n][k] with X the activations
// (fp32 in shared memory, rounded to the weights' type as they enter the product) and W's rows
// as B's columns. Each warp takes 8 output rows (an n8 tile) at a time over the whole reduction;
// the accumulator pair (c0, c1) of a lane holds two adjacent rows for stream g, (c2, c3) for
// stream g + 8, so a unit of NR = 2 adjacent rows (the gate's tanh / sigmoid pair) lands in one
// lane. Same epilogue contract as matvec: epi(u, m, a) with a[r] the unit's row r.
template <class WK, int NR, class Epi>
AGF_DEV void mma_matvec(const uint16_t* W, int ld, ptrdiff_t mstride, int nsum, int NU, int ncols,
                        const float* x, int ldx, int xstride, int M, Epi epi) {
    static_assert(NR == 1 || NR == 2, "an n8 tile holds whole units of 1 or 2 rows");
    constexpr bool bf16 = sizeof(WK) > 0 && !std::is_same<WK, F16>::value;
    const int lane = agf_tid() & 31, g = lane >> 2, t = lane & 3, nwarps = agf_nthreads() / 32;
    const int N = NU * NR, ntiles = (N + 7) / 8;
    for (int tile = agf_tid() / 32; tile < ntiles; tile += nwarps) {  // warp-uniform
        float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        const int n = tile * 8 + g;  // the W row this lane feeds as B's column g
        for (int k = 0; k < nsum; ++k) {
            const uint16_t* Wk = W + k * mstride;
            const float* xk = x + k * xstride;
            for (int k0 = 0; k0 < ncols; k0 += 16) {
                // every pair (col, col + 1) starts at an even column of a row padded to a multiple
                // of 8, so it is wholly inside or wholly outside the row: one paired load each
                uint32_t a[4], b[2];
                for (int i = 0; i < 4; ++i) {  // A: rows g (i even) / g + 8 (i odd), cols k0 + 2t (+8 for i >= 2)
                    const int row = g + (i & 1) * 8, col = k0 + 2 * t + (i >= 2 ? 8 : 0);
                    a[i] = row < M && col < ncols ? load_pack2(xk + row * ldx + col, bf16) : 0u;
                }
                for (int i = 0; i < 2; ++i) {  // B: rows k0 + 2t (+8), column n = W's row n
                    const int col = k0 + 2 * t + i * 8;
                    b[i] = n < N && col < ncols ? load_pair16(Wk + static_cast<size_t>(n) * ld + col) : 0u;
                }
                agf_mma_16816(c, a, b, bf16);
            }
        }
        const int n0 = tile * 8 + 2 * t;  // this lane's two output rows n0, n0 + 1
        for (int half = 0; half < 2; ++half) {
            const int m = g + half * 8;
            if (m >= M) continue;
            if constexpr (NR == 2) {
                if (n0 / 2 < NU) {
                    const float a2[2] = {c[2 * half], c[2 * half + 1]};
                    epi(n0 / 2, m, a2);
                }
            } else {
                for (int j = 0; j < 2; ++j) {
                    if (n0 + j < NU) {
                        const float a1[1] = {c[2 * half + j]};
                        epi(n0 + j, m, a1);
                    }
                }
            }
        }
    }
}

// The block's product for MT streams: tensor cores for 16-bit weights at MT = 16, FMAs otherwise.
template <class WK, int MT, int NR, class Epi>
AGF_DEV void block_matvec(const typename WK::T* W, int ld, ptrdiff_t mstride, int nsum, int NU, int ncols,
                          const float* x, int ldx, int xstride, int M, Epi epi) {
    if constexpr (MT == 16 && !std::is_same<WK, F32>::value && NR <= 2)
        mma_matvec<WK, NR>(W, ld, mstride, nsum, NU, ncols, x, ldx, xstride, M, epi);
    else
        matvec<WK, MT, NR>(W, ld, mstride, nsum, NU, ncols, x, ldx, xstride, M, epi);
}

// block-cooperative copy of 16-byte multiples
AGF_DEV void copy_to_smem(void* dst, const void* src, size_t bytes) {
#ifdef __CUDACC__
    const uint4* s = reinterpret_cast<const uint4*>(src);
    uint4* d = reinterpret_cast<uint4*>(dst);
    for (size_t i = agf_tid(); i < bytes / 16; i += agf_nthreads()) d[i] = s[i];
#else
    if (agf_tid() == 0) std::memcpy(dst, src, bytes);
#endif
}

// The start both samplers share, in T (double or float): lane l's chunk [lo, hi) of the row, the
// row's max mx, and the sums of exp(lg - mx) over the chunks before this lane's (c) and over the
// row (total). Called by all 32 lanes of one warp (each sums a contiguous chunk, then a warp scan).
AGF_DEV float agf_exp_t(float x) { return expf(x); }
AGF_DEV double agf_exp_t(double x) { return exp(x); }

template <class T>
struct WarpCdf {
    int lo, hi;
    float mx;
    T c, total;
};

template <class T>
AGF_DEV WarpCdf<T> warp_cdf_start(const float* lg, int n) {
    const int lane = agf_tid() & 31;
    const int chunk = (n + 31) / 32;
    WarpCdf<T> w;
    w.lo = lane * chunk < n ? lane * chunk : n;
    w.hi = w.lo + chunk < n ? w.lo + chunk : n;
    float mx = -INFINITY;
    for (int i = w.lo; i < w.hi; ++i) mx = fmaxf(mx, lg[i]);
    for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, agf_shfl_xor(mx, off));
    w.mx = mx;
    T s = 0;
    for (int i = w.lo; i < w.hi; ++i) s += agf_exp_t(static_cast<T>(lg[i]) - static_cast<T>(mx));
    T inc = s;
    for (int off = 1; off < 32; off <<= 1) {
        const T v = agf_shfl_up(inc, off);
        if (lane >= off) inc += v;
    }
    w.total = agf_shfl_idx(inc, 31);
    w.c = agf_shfl_up(inc, 1);
    if (lane == 0) w.c = 0;
    return w;
}

// Smallest k with CDF_k > u over softmax(lg[0..n)), the rule of audiogen_fast.sampling.sample_softmax,
// in double; called by all 32 lanes of one warp. Not inlined: it is warp_inverse_cdf_fast's rare
// fallback (a cold path: its double registers stay out of the callers' allocation).
AGF_DEV_NOINLINE int warp_inverse_cdf(const float* lg, int n, float u) {
    const WarpCdf<double> w = warp_cdf_start<double>(lg, n);
    const double target = static_cast<double>(u) * w.total;
    double c = w.c;
    int cnt = 0;
    for (int i = w.lo; i < w.hi; ++i) {
        c += agf_exp_t(static_cast<double>(lg[i]) - static_cast<double>(w.mx));
        cnt += c <= target;
    }
    for (int off = 16; off > 0; off >>= 1) cnt += agf_shfl_xor(cnt, off);
    return cnt < n - 1 ? cnt : n - 1;
}

// warp_inverse_cdf's result, mostly without its double-precision exps (one warp computing 256 double
// exps in two passes sat on the critical path of every sample): the same rule in fp32 with fast
// exps, accepted when u * sum lies more than kWarpSoftmaxMargin * sum away from both cumulative sums
// around the chosen class; otherwise (or for non-finite logits) the double-precision rule decides,
// so the class is always warp_inverse_cdf's. Error of the fp32 cumulative sums, relative to the sum
// (the max term is 1, so the sum is >= 1): --use_fast_math's __expf is within (2 + 1.16 |x|) ulp
// (2^-23); terms with |x| <= 20 contribute <= 25.2 ulp x their share of the sum (3.0e-6), the others
// (each below 2.1e-9) <= n x 20 x 2.1e-9 x 3.4 ulp of 1 (< 1e-9 for n <= 1024); the roundings
// along a prefix sum (n <= 1024: a lane's chunk of <= 32 twice, 5 scan levels: 4.1e-6) and the
// target's (6e-8): ~7.2e-6 in all, a quarter of the margin (wider rows go straight to the double
// rule). The fallback runs when u lands within the margin of a class's edge: with probability
// ~2 x margin / p(chosen class), e.g. 3% for a flat 512-way distribution, far less for a peaked
// one. Called by all 32 lanes; *fell_back (if given) tells whether the double rule decided.
constexpr float kWarpSoftmaxMargin = 3e-5f;

AGF_DEV int warp_inverse_cdf_fast(const float* lg, int n, float u, bool* fell_back = nullptr) {
    if (n > 1024) {
        if (fell_back) *fell_back = true;
        return warp_inverse_cdf(lg, n, u);
    }
    const WarpCdf<float> w = warp_cdf_start<float>(lg, n);
    const float target = u * w.total, margin = kWarpSoftmaxMargin * w.total;
    float c = w.c;
    int cnt = 0;
    float gap = INFINITY;  // distance of the target from the cumulative sums around the crossing
    for (int i = w.lo; i < w.hi; ++i) {
        const float prev = c;
        c += expf(lg[i] - w.mx);
        if (c <= target) ++cnt;
        else if (prev <= target) gap = fminf(c - target, target - prev);
    }
    for (int off = 16; off > 0; off >>= 1) {
        cnt += agf_shfl_xor(cnt, off);
        gap = fminf(gap, agf_shfl_xor(gap, off));
    }
    const bool ok = gap < INFINITY && gap > margin;  // false for NaN, for no crossing, near a boundary
    if (fell_back) *fell_back = !ok;
    if (ok) return cnt;                              // every lane agrees: the branch is warp-uniform
    return warp_inverse_cdf(lg, n, u);
}

// The continuous samplers of audiogen_fast/sampling.py in double, as there, on a logits row in
// shared memory; both clamp to [-1, 1].
// Mixture of logistics, lg = (logit_probs | means | log_scales) of n_mix each, nz = (u1, u2): the
// component by the warp's inverse CDF over the logit_probs (all 32 lanes call it), then the
// logistic's inverse CDF at u2.
AGF_DEV float warp_mol_sample(const float* lg, int n_mix, const float* nz, float log_scale_min) {
    const int k = warp_inverse_cdf_fast(lg, n_mix, nz[0]);
    const double mean = lg[n_mix + k];
    const double ls = fmax(static_cast<double>(lg[2 * n_mix + k]), static_cast<double>(log_scale_min));
    const double u2 = fmin(fmax(static_cast<double>(nz[1]), 1e-5), 1.0 - 1e-5);
    const double x = mean + exp(ls) * (log(u2) - log(1.0 - u2));
    return static_cast<float>(fmin(fmax(x, -1.0), 1.0));
}

// Gaussian, lg = (mean, log_std), z a standard normal draw (any lane may call it).
AGF_DEV float gaussian_sample(const float* lg, float z, float log_scale_min) {
    const double ls = fmax(static_cast<double>(lg[1]), static_cast<double>(log_scale_min));
    const double x = static_cast<double>(lg[0]) + exp(ls) * static_cast<double>(z);
    return static_cast<float>(fmin(fmax(x, -1.0), 1.0));
}

}  // namespace agf
