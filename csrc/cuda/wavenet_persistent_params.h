// Parameters and shared-memory planner of the WaveNet persistent kernel (wavenet_persistent.cuh),
// in plain C++ so that the pybind11 bindings (compiled by the host compiler) can use them too.
#pragma once
#include <cstddef>
#include <cstdint>

#include "hd.h"

namespace agf {
namespace wnp {

constexpr int MAX_LAYERS = 64;
constexpr int MAX_BLOCKS = 64;  // layer blocks per chain
constexpr int MAX_THREADS = 256;
constexpr int MAX_STREAMS = 16;  // streams per chain

// the kernel variant for M streams per chain: 1, 8, or 16 (tensor cores with 16-bit weights)
AGF_HD inline int streams_variant(int M) { return M <= 1 ? 1 : M <= 8 ? 8 : 16; }

// The layer products' shape variant: 1 where every padded size is W1's (R 64, G/2 64, S 128, H 128,
// 256 outputs) with one stream per chain and 256 threads (the kernel instance whose critical
// products have compile-time shapes), 2 there if Params.shapes asks for register-resident critical
// matrices, else 0. Defined after Params.
struct Params;
AGF_HD inline int shape_variant(const Params& p, int threads);

struct Params {
    int B, Tc, L, K, R, Rp, G2, G2p, S, Sp, H, Hp, OUT, OUTp, IN;
    int mode;      // 0 mu-law softmax, 1 mixture of logistics, 2 Gaussian
    int nz, n_mix, teacher, hist_rows;
    long long t0;  // absolute index of the chunk's first sample (ring positions)
    float skip_scale, log_scale_min;
    int M;         // streams per chain (the last chain may have fewer)
    int nchains, nblk;
    int dsmem;     // 1: a chain is a thread-block cluster and its mailboxes/flags live in the
                   // receivers' shared memory (sm_90 distributed shared memory); 0: global memory
    int blk_lo[MAX_BLOCKS + 1];     // layer block r owns layers [blk_lo[r], blk_lo[r + 1])
    int blk_wsmem[MAX_BLOCKS + 1];  // where a block's weights live ([nblk]: output block, 0 or 1):
                                    // 1 all in shared memory; 2 the critical-path matrices (current
                                    // tap, residual rows) in shared memory, the past taps and skip rows
                                    // in global memory (L2); 0 all in global memory
    int pack;      // planner: 0 auto (2 only where not one whole layer fits), 1 never 2, 2 prefer 2
                   // where it packs more layers per block
    int fixed;     // 1: keep the layer partition given in blk_lo / nblk (only choose where weights
                   // live): the partition decides the skip sums' order, so a stream's result must
                   // not depend on how many streams share its chain
    int shapes;    // 1 (default): where shape_variant() allows, the products run with compile-time
                   // shapes (matvec_fixed: the same bits, fewer instructions); 0: always run-time shapes;
                   // 2: as 1, with each layer block's critical matrices held in registers (RegSlice)
    int dil[MAX_LAYERS], hoff[MAX_LAYERS];  // dilation, first ring row of each layer
    const void* wg;      // [L][K][2 * G2p][Rp]  row 2c: tanh channel c, row 2c + 1: sigmoid channel c
    const void* wos;     // [L][Rp + Sp][G2p]    rows < Rp residual, rows Rp.. skip
    const float* bos;    // [L][Rp + Sp]
    const void* w1;      // [Hp][Sp]
    const float* b1;     // [Hp]
    const void* w2;      // [OUTp][Hp]
    const float* b2;     // [OUTp]
    const float* emb;    // [IN][Rp]
    const float* emb_b;  // [Rp]
    const float* cond;   // [B][Tc][L][2 * G2]   conv bias + mel + speaker, per layer
    float* hist;         // [B][hist_rows][R]    ring buffers, persist across launches
    float* x;            // [B]                  input of the first step; the last input on return
    const float* noise;  // [B][Tc][nz]
    const float* teacher_in;  // [B][Tc]
    float* out;          // [B][Tc]              samples (class index as a float for mu-law)
    float* logits;       // [B][Tc][OUT]         teacher-forced outputs
    float* mail;         // h mailboxes [nchains][nblk + 1][M][Rp], then skip partials [nchains][nblk][M][Sp]
    unsigned long long* flags;  // h flags [nchains][nblk + 1], then skip flags [nchains][nblk]
    unsigned long long tag;
    long long* prof;     // [nchains][nblk + 1][NPHASE] clock ticks per phase, summed over the chunk
                         // (nullptr: no profile); phases: LayerPhase / OutPhase below
};

AGF_HD inline int shape_variant(const Params& p, int threads) {
    if (!(p.shapes && p.M == 1 && threads == 256 && p.Rp == 64 && p.G2p == 64 && p.Sp == 128 && p.Hp == 128 &&
          p.OUTp == 256))
        return 0;
    for (int r = 0; r < p.nblk; ++r)  // and every layer's weights in shared memory (the instance
        if (p.blk_wsmem[r] != 1) return 0;  // reads them there without a runtime choice)
    return p.shapes == 2 ? 2 : 1;     // 2: the critical matrices in registers too
}

// Phases of the profile (Params.prof; kernel_common.cuh PhaseClock): a layer block's per-sample
// loop, then the output block's (names in audiogen_fast/ops/wavenet_persistent.py).
// L_GATE: per own layer, the ring-buffer store + the current-tap product + gate + barrier; L_RES:
// the residual product + barrier (both summed over the block's layers)
enum LayerPhase { L_TAPS, L_PRE, L_WAIT, L_READ, L_GATE, L_RES, L_SEND, L_SKIP, L_NPH };
enum OutPhase { O_WAIT, O_SUM, O_HIDDEN, O_LOGITS, O_SAMPLE, O_EMBED, O_NPH };
constexpr int NPHASE = 8;  // a row per block, wide enough for either role
static_assert(L_NPH <= NPHASE && O_NPH <= NPHASE, "a block's phases must fit its profile row");

AGF_HD inline size_t round16(size_t b) { return (b + 15) & ~static_cast<size_t>(15); }

AGF_HD inline size_t layer_w_elems(const Params& p) {
    return static_cast<size_t>(p.K) * 2 * p.G2p * p.Rp + static_cast<size_t>(p.Rp + p.Sp) * p.G2p;
}

// the critical-path matrices of a layer: current tap [2 G2p][Rp] and residual rows [Rp][G2p]
AGF_HD inline size_t crit_w_elems(const Params& p) {
    return static_cast<size_t>(2) * p.G2p * p.Rp + static_cast<size_t>(p.Rp) * p.G2p;
}

AGF_HD inline size_t layer_smem_w_elems(const Params& p, int mode) {
    return mode == 1 ? layer_w_elems(p) : mode == 2 ? crit_w_elems(p) : 0;
}

AGF_HD inline size_t out_w_elems(const Params& p) {
    return static_cast<size_t>(p.Hp) * p.Sp + static_cast<size_t>(p.OUTp) * p.Hp;
}

// floats of per-block vectors after the weights: h, skip [M][Rp | Sp]; per own layer z, pre, taps
AGF_HD inline size_t layer_floats(const Params& p, int nl) {
    return static_cast<size_t>(p.M) * (p.Rp + p.Sp) + static_cast<size_t>(nl) * p.M * p.G2p +
           static_cast<size_t>(nl) * p.M * 2 * p.G2p + static_cast<size_t>(nl) * (p.K - 1) * p.M * p.Rp;
}

AGF_HD inline size_t mail_h_floats(const Params& p) {
    return static_cast<size_t>(p.nchains) * (p.nblk + 1) * p.M * p.Rp;
}

// the output block's y [M][Sp], hid [M][Hp], lg [M][OUTp], then xs [M] (up to 16 streams; kept a
// multiple of 8 floats so that what follows stays 16-byte aligned)
AGF_HD inline size_t out_floats(const Params& p) {
    return static_cast<size_t>(p.M) * (p.Sp + p.Hp + p.OUTp) + static_cast<size_t>((p.M + 7) / 8 * 8);
}

constexpr int MAX_CLUSTER = 16;  // blocks per cluster (16 needs the non-portable cluster size)

// dsmem: every block's shared memory starts with MAX_CLUSTER flags and its h inbox [M][Rp]
AGF_HD inline size_t ds_head(const Params& p) {
    return p.dsmem ? 8 * MAX_CLUSTER + round16(static_cast<size_t>(p.M) * p.Rp * 4) : 0;
}

inline size_t layer_block_bytes(const Params& p, int nl, int mode, size_t wt) {
    return ds_head(p) + round16(nl * layer_smem_w_elems(p, mode) * wt) + 4 * layer_floats(p, nl);
}

// the output block's skip inboxes [nblk][M][Sp] (dsmem) follow its vectors
inline size_t out_block_bytes(const Params& p, bool wsmem, size_t wt) {
    const size_t skin = p.dsmem ? static_cast<size_t>(p.nblk) * p.M * p.Sp * 4 : 0;
    return ds_head(p) + round16(wsmem ? out_w_elems(p) * wt : 0) + 4 * out_floats(p) + skin;
}

// Assigns layers to blocks: as many consecutive layers per block as fit in `budget` bytes of
// shared memory with their weights (mode 1), or with only their critical-path matrices (mode 2:
// where a whole layer does not fit, or with pack = 2 where that packs more layers); a layer too
// big even for that keeps its weights in global memory (mode 0). Returns the dynamic shared memory
// a block needs, or 0 if the model cannot be planned (more than MAX_BLOCKS layer blocks, or a
// dsmem chain longer than a cluster).
inline size_t plan(Params& p, size_t budget, size_t wt) {
    int r = 0, l = 0;
    auto fit = [&](int mode) {
        int nl = 0;
        while (l + nl < p.L && layer_block_bytes(p, nl + 1, mode, wt) <= budget) ++nl;
        return nl;
    };
    if (p.fixed) {
        for (r = 0; r < p.nblk; ++r) {
            const int nl = p.blk_lo[r + 1] - p.blk_lo[r];
            p.blk_wsmem[r] = layer_block_bytes(p, nl, 1, wt) <= budget ? 1
                             : (p.pack != 1 && layer_block_bytes(p, nl, 2, wt) <= budget) ? 2 : 0;
        }
        l = p.L;
    }
    while (l < p.L) {
        if (r >= MAX_BLOCKS) return 0;
        p.blk_lo[r] = l;
        const int full = fit(1), crit = p.pack == 1 ? 0 : fit(2);
        int nl, mode;
        if (full > 0 && !(p.pack == 2 && crit > full)) {
            nl = full, mode = 1;
        } else if (crit > 0) {
            nl = crit, mode = 2;
        } else {
            nl = 1, mode = 0;
        }
        p.blk_wsmem[r] = mode;
        l += nl;
        ++r;
    }
    p.nblk = r;
    if (p.dsmem && r + 1 > MAX_CLUSTER) return 0;
    p.blk_lo[r] = p.L;
    p.blk_wsmem[r] = out_block_bytes(p, true, wt) <= budget;
    size_t need = out_block_bytes(p, p.blk_wsmem[r], wt);
    for (int b = 0; b < r; ++b) {
        const size_t nb = layer_block_bytes(p, p.blk_lo[b + 1] - p.blk_lo[b], p.blk_wsmem[b], wt);
        need = need > nb ? need : nb;
    }
    return need;
}

}  // namespace wnp
}  // namespace agf
