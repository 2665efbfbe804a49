// Parameters and shared-memory planner of the WaveRNN persistent kernel (wavernn_persistent.cuh),
// in plain C++ so that the pybind11 bindings can use them too.
#pragma once
#include <cstddef>
#include <cstdint>

#include "hd.h"

namespace agf {
namespace wrp {

constexpr int MAX_THREADS = 256;
constexpr int MAX_STREAMS = 4;   // streams per chain (lockstep)
constexpr int FLAG_STRIDE = 16;  // u64 per flag: one 128-byte line each

struct Params {
    int B, Tc, R, Rp, F, Fp, OUT, OUTp;
    int mode;    // 0 RAW softmax over OUT classes, 1 mixture of logistics (OUT = 3 * n_mix), 2 Gaussian (OUT = 2)
    int nz, n_mix, teacher;
    float log_scale_min;
    int M;       // streams per chain
    int nchains, nblk;  // chains; blocks per chain
    int wsmem;   // 1: every block keeps its rows in shared memory
    // weights, rows padded to Rp / Fp columns (zeros); GRU rows unit-major: unit j's rows r, z, n
    const void* w_ih1;   // [R][3][Rp]
    const void* w_hh1;   // [R][3][Rp]
    const void* w_ih2;   // [R][3][Rp]   (the x part of GRU2's input; the a2 part is hoisted)
    const void* w_hh2;   // [R][3][Rp]
    const void* w_f1;    // [F][Rp]
    const void* w_f2;    // [F][Fp]
    const void* w_f3;    // [OUT][Fp]
    const float* b_ih1;  // [R][3]
    const float* b_hh1;  // [R][3]
    const float* b_hh2;  // [R][3]
    const float* b_f3;   // [OUT]
    const float* w_ix;   // [R]    I's weight of the previous sample
    // hoisted step-independent parts (audiogen_fast/models/wavernn/runtime.py _Step.hoist)
    const float* pre_I;   // [B][Tc][R]
    const float* pre_2;   // [B][Tc][3R]  (gate order r, z, n as in PyTorch)
    const float* pre_f1;  // [B][Tc][F]
    const float* pre_f2;  // [B][Tc][F]
    float* h1;            // [B][R] state
    float* h2;            // [B][R]
    float* x;             // [B]    the next input sample
    const float* noise;   // [B][Tc][nz]
    const float* teacher_in;  // [B][Tc]
    float* out;           // [B][Tc] samples
    long long* cls;       // [B][Tc] classes (RAW, sampled) or null
    float* logits;        // [B][Tc][OUT] (teacher)
    float* xbuf;          // [nchains][5 stages][M][2 * max(Rp, Fp, OUTp)]  the gathered vectors
    unsigned long long* flags;  // [nchains][nblk][FLAG_STRIDE]
    unsigned long long tag;
    long long* prof;      // [nchains][nblk][NPHASE] clock ticks per phase over the chunk, or null
};

// Phases of the profile (kernel_common.cuh PhaseClock; names in audiogen_fast/ops/wavernn_persistent.py):
// per step the GRU1 input, each stage's product (+ its publish), the next step's recurrent
// products, and over the five gathers the waits for the other blocks and the reads of their slices
enum Phase { P_INPUT, P_GRU1, P_GRU2, P_FC1, P_RECURRENT, P_FC2, P_FC3, P_WAIT, P_READ, P_SAMPLE, P_NPH };
constexpr int NPHASE = 10;
static_assert(P_NPH == NPHASE, "one profile slot per phase");

AGF_HD inline int split(int n, int b, int nb) { return static_cast<int>((static_cast<long long>(n) * b) / nb); }

AGF_HD inline int stage_width(const Params& p) {
    int w = 2 * p.Rp;
    if (p.Fp > w) w = p.Fp;
    if (p.OUTp > w) w = p.OUTp;
    return w;
}

// weights of block b (elements)
AGF_HD inline size_t block_w_elems(const Params& p, int b) {
    const size_t units = split(p.R, b + 1, p.nblk) - split(p.R, b, p.nblk);
    const size_t f = split(p.F, b + 1, p.nblk) - split(p.F, b, p.nblk);
    const size_t o = split(p.OUT, b + 1, p.nblk) - split(p.OUT, b, p.nblk);
    return units * 12 * p.Rp + f * (p.Rp + p.Fp) + o * p.Fp;
}

// floats of the per-block vectors: h, h1, x1, h2, x2 [M][Rp]; y1, y2 [M][Fp]; logits [M][OUTp];
// gh1, gh2 of the block's units [M][3 * units_max]; the inputs xs [M]
AGF_HD inline size_t block_floats(const Params& p) {
    const int umax = (p.R + p.nblk - 1) / p.nblk;
    return static_cast<size_t>(p.M) * (5 * p.Rp + 2 * p.Fp + p.OUTp + 2 * 3 * ((umax + 7) / 8 * 8) + 8);
}

inline size_t round16h(size_t b) { return (b + 15) & ~static_cast<size_t>(15); }

inline size_t block_bytes(const Params& p, bool wsmem, size_t wt) {
    size_t wmax = 0;
    if (wsmem)
        for (int b = 0; b < p.nblk; ++b) {
            const size_t e = block_w_elems(p, b);
            wmax = e > wmax ? e : wmax;
        }
    return round16h(wmax * wt) + 4 * block_floats(p);
}

// The fewest blocks (>= min_blocks, <= max_blocks) whose rows fit in `budget` bytes of shared
// memory each; if none does, max_blocks blocks reading their rows from global memory (L2).
// Returns the shared memory a block needs.
inline size_t plan(Params& p, size_t budget, size_t wt, int min_blocks, int max_blocks) {
    if (min_blocks < 1) min_blocks = 1;
    if (max_blocks > p.R) max_blocks = p.R;  // every block owns at least one GRU unit
    if (min_blocks > max_blocks) min_blocks = max_blocks;
    for (int nb = min_blocks; nb <= max_blocks; ++nb) {
        p.nblk = nb;
        if (block_bytes(p, true, wt) <= budget) {
            p.wsmem = 1;
            return block_bytes(p, true, wt);
        }
    }
    p.nblk = max_blocks;
    p.wsmem = 0;
    return block_bytes(p, false, wt);
}

}  // namespace wrp
}  // namespace agf
