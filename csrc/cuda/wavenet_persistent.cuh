// WaveNet persistent kernel: a whole chunk of samples of the incremental WaveNet in one launch,
// with every weight in shared memory, spread over a chain of blocks (SMs) that hand each
// sample's state on by flags. Compiled by nvcc (wavenet_persistent.cu) and by the CPU emulator
// (csrc/cuda_emu_bindings.cpp) from this one source; the reference it must reproduce is the eager
// incremental loop (audiogen_fast/models/wavenet/runtime.py, TorchLoop) — see
// audiogen_fast/ops/wavenet_persistent.py, which lays the weights out and checks the inputs.
//
// Layout of one launch. A "chain" of nblk + 1 blocks serves M streams in lockstep:
//   layer block r (r < nblk) owns the contiguous layers [blk_lo[r], blk_lo[r+1]) and keeps their
//     weights in shared memory (the planner puts as many layers in a block as fit);
//   the output block (r = nblk) owns the output stack, the sampler and the input embedding.
// Per sample t the residual state h travels around the ring
//   output block --(h0)--> block 0 --(h)--> block 1 ... block nblk-1,
// and each layer block, once it has passed h on, sends the skip sum of its own layers straight to
// the output block (the skip products are off the critical path; the output block sums the
// partials when all have arrived). Messages go through mailboxes in global memory: the sender
// writes M x R (or M x S) floats, then
// publishes the flag value tag + t + 1 with a release store; the receiver's thread 0 spins on an
// acquire load until it sees that value, and the block reads the mailbox with L1-bypassing loads.
// A mailbox is never overwritten before it has been read: the next message to block r can only
// be sent after the current one went round the whole ring. tag = launch id << 32, so a flag left
// by an earlier launch never matches.
// Off the critical path, before it waits for sample t, a layer block already sums each of its
// layers' conditioning and the dilated-conv taps on past inputs (ring buffers in global memory);
// on the critical path remain, per layer, the current-tap product (R -> G), the gate, and the
// residual product (G/2 -> R), each one block-wide matrix-vector product behind a barrier.
//
// SH = 1 (shape_variant(): W1's padded sizes, one stream, 256 threads): the critical products and
// the output stack run as matvec_fixed with their shapes as constants (the same bits as matvec).
// SH = 2 (asked for with shapes = 2): the same, and each thread holds its share of its block's
// first reg_layers<WK> layers' critical matrices (current tap, residual rows) in registers for the
// whole launch (RegSlice; again the same bits).
//
// Shapes (padded sizes Xp are multiples of 8 so every row is read in 16/32-byte vectors; the
// padding holds zeros): B streams, Tc steps, L layers, K taps, R residual, G2 = G/2 gate channels,
// S skip, H output hidden, OUT outputs, IN embedding rows (classes for mu-law, else 1).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "compat.h"
#include "kernel_common.cuh"
#include "wavenet_persistent_params.h"

namespace agf {
namespace wnp {

// The two transports of a chain's messages. L2 (DS = false): mailboxes and flags in global
// memory, payload read with L1-bypassing loads. DSMEM (DS = true; the chain is one thread-block
// cluster): the sender stores into the receiver's shared memory through a mapped address and
// sets a flag there at cluster scope; the receiver spins on its own shared memory.
template <bool DS>
AGF_DEV void wait_flag(const unsigned long long* f, unsigned long long v) {
    if (DS) agf_wait_eq_cluster(f, v);
    else agf_wait_eq(f, v);
}
template <bool DS>
AGF_DEV void set_flag(unsigned long long* f, unsigned long long v) {
    if (DS) agf_publish_cluster(f, v);
    else agf_publish(f, v);
}
template <bool DS>
AGF_DEV float rd(const float* q) { return DS ? *q : agf_ldcg(q); }

// dsmem layout at the start of every block's shared memory: flags [MAX_CLUSTER] (0: the h inbox's,
// 1 + r: layer block r's skip partial, output block only), then the h inbox [M][Rp]
AGF_DEV unsigned long long* ds_flags() { return static_cast<unsigned long long*>(agf_smem()); }
AGF_DEV float* ds_hin() { return reinterpret_cast<float*>(static_cast<unsigned char*>(agf_smem()) + 8 * MAX_CLUSTER); }
// the output block's skip inboxes [nblk][M][Sp], at the same offset in every block's window
AGF_DEV float* ds_skin(const Params& p, size_t wt) {
    const size_t off = ds_head(p) + round16(p.blk_wsmem[p.nblk] ? out_w_elems(p) * wt : 0) + 4 * out_floats(p);
    return reinterpret_cast<float*>(static_cast<unsigned char*>(agf_smem()) + off);
}

// t mod Ml, the row of a ring buffer of Ml rows: a mask when Ml is a power of two (always, for
// dilations 2^i and K = 2 or 3; a 64-bit remainder is a long subroutine on the GPU, and the ring
// store sits on the critical path of every layer)
AGF_DEV long long ring_pos(long long t, int Ml) {
    return (Ml & (Ml - 1)) == 0 ? (t & (Ml - 1)) : t % Ml;
}

// One stream's next input from its outputs and noise (all lanes of a warp call it; lane 0 uses the result).
AGF_DEV float warp_sample(const Params& p, const float* lg, const float* nz) {
    if (p.mode == 0) return static_cast<float>(warp_inverse_cdf_fast(lg, p.OUT, nz[0]));
    return p.mode == 1 ? warp_mol_sample(lg, p.n_mix, nz, p.log_scale_min) : gaussian_sample(lg, nz[0], p.log_scale_min);
}

// the profile row of block r of a chain (nullptr: no profile; see PhaseClock)
AGF_DEV long long* prof_row(const Params& p, int chain, int r) {
    return p.prof ? p.prof + (static_cast<size_t>(chain) * (p.nblk + 1) + r) * NPHASE : nullptr;
}

// ---- the two block roles -------------------------------------------------------------------

// layers per block whose critical matrices the register instance holds (fp16 / bf16: 24 registers
// a layer, fp32 48); a block with more runs the rest from shared memory
template <class WK> constexpr int reg_layers = std::is_same<WK, F32>::value ? 2 : 3;

template <class WK, int MT, bool DS, int SH>
AGF_DEV void layer_block(const Params& p, int chain, int r) {
    using WT = typename WK::T;
    const int tid = agf_tid(), NT = agf_nthreads();
    const int la = p.blk_lo[r], nl = p.blk_lo[r + 1] - la;
    const int s0 = chain * p.M, M = p.M < p.B - s0 ? p.M : p.B - s0;
    const int Rp = p.Rp, Sp = p.Sp, G2p = p.G2p, RS = p.Rp + p.Sp, K = p.K;
    const int mode = p.blk_wsmem[r];  // 1 all weights in shared memory, 2 the critical ones, 0 none
    const size_t lw = layer_smem_w_elems(p, mode), wg_el = static_cast<size_t>(K) * 2 * G2p * Rp;
    const size_t tap_el = static_cast<size_t>(2) * G2p * Rp;  // one tap's [2 G2p][Rp]
    unsigned char* sm = static_cast<unsigned char*>(agf_smem()) + ds_head(p);
    WT* ws = reinterpret_cast<WT*>(sm);
    float* h = reinterpret_cast<float*>(sm + round16(nl * lw * sizeof(WT)));  // [M][Rp]
    float* skip = h + p.M * Rp;                 // [M][Sp] this block's skip partial
    float* z = skip + p.M * Sp;                 // [nl][M][G2p] each own layer's gate output
    float* pre = z + nl * p.M * G2p;            // [nl][M][2 * G2p]
    float* taps = pre + nl * p.M * 2 * G2p;     // [nl][K-1][M][Rp]
    // [nl][M][Rp] each own layer's output, in the taps' room ([nl][K-1][M][Rp], K >= 2): the taps
    // are spent (step 2) before the first output is written (step 4) and gathered again only
    // after the step's last use of the outputs (step 7). Layer li's input: h for the first, the
    // previous layer's output after it; every input stays until the step's end, when it enters
    // its ring buffer, off the critical path.
    float* hout = taps;
    auto hin = [&](int li) { return li == 0 ? h : hout + (li - 1) * p.M * Rp; };
    // global layouts: wg [L][K][2 G2p][Rp], wos [L][Rp + Sp][G2p]; in shared memory per layer:
    // mode 1 the same [K][2 G2p][Rp] + [Rp + Sp][G2p]; mode 2 the current tap + the residual rows
    auto g_wg = [&](int li) { return static_cast<const WT*>(p.wg) + (la + li) * wg_el; };
    auto g_wos = [&](int li) { return static_cast<const WT*>(p.wos) + static_cast<size_t>(la + li) * RS * G2p; };
    for (int li = 0; li < nl && mode; ++li) {
        if (mode == 1) {
            copy_to_smem(ws + li * lw, g_wg(li), wg_el * sizeof(WT));
            copy_to_smem(ws + li * lw + wg_el, g_wos(li), static_cast<size_t>(RS) * G2p * sizeof(WT));
        } else {
            copy_to_smem(ws + li * lw, g_wg(li) + (K - 1) * tap_el, tap_el * sizeof(WT));
            copy_to_smem(ws + li * lw + tap_el, g_wos(li), static_cast<size_t>(Rp) * G2p * sizeof(WT));
        }
    }
    auto WPAST = [&](int li) -> const WT* { return mode == 1 ? ws + li * lw : g_wg(li); };  // taps 0 .. K-2
    // the critical matrices of own layer li at base + li * stride: the mode's choice made once,
    // not per sample and layer (it compiled to ~70 instructions of 64-bit address arithmetic in
    // every layer step). SH >= 1 implies mode 1 (shape_variant), so there the pointers derive
    // from the shared-memory array alone and the products load with LDS, not generic loads.
    const bool all_smem = SH >= 1 || mode == 1;
    const WT* cur0 = all_smem ? ws + (K - 1) * tap_el : mode == 2 ? ws : g_wg(0) + (K - 1) * tap_el;
    const WT* res0 = all_smem ? ws + wg_el : mode == 2 ? ws + tap_el : g_wos(0);
    const WT* skip0 = (all_smem ? ws + wg_el : g_wos(0)) + static_cast<size_t>(Rp) * G2p;
    const size_t cur_st = all_smem || mode == 2 ? lw : wg_el, res_st = all_smem || mode == 2 ? lw : static_cast<size_t>(RS) * G2p;
    const size_t skip_st = all_smem ? lw : static_cast<size_t>(RS) * G2p;
    auto WCUR = [&](int li) -> const WT* { return cur0 + li * cur_st; };
    auto WRES = [&](int li) -> const WT* { return res0 + li * res_st; };
    auto WSKIP = [&](int li) -> const WT* { return skip0 + li * skip_st; };
    // SH == 2: the first NLR layers' critical matrices in registers (compile-time indices only:
    // the layer loop over them is unrolled below)
    constexpr int NLR = SH == 2 ? reg_layers<WK> : 1;
    RegSlice<WK, 2, 64, 64, 256> rcur[NLR];
    RegSlice<WK, 1, 64, 64, 256> rres[NLR];
    const size_t hbox = static_cast<size_t>(p.M) * Rp;
    const bool last = r + 1 == p.nblk;  // the last layer block sends only its skip partial
    const float* mail_in;
    float *mail_out, *skip_out;
    const unsigned long long* flag_in;
    unsigned long long *flag_out, *skip_flag;
    if (DS) {
        mail_in = ds_hin();
        flag_in = ds_flags();
        mail_out = last ? nullptr : static_cast<float*>(agf_cluster_map(ds_hin(), r + 1));
        flag_out = last ? nullptr : static_cast<unsigned long long*>(agf_cluster_map(ds_flags(), r + 1));
        skip_out = static_cast<float*>(agf_cluster_map(ds_skin(p, sizeof(WT)), p.nblk)) + static_cast<size_t>(r) * p.M * Sp;
        skip_flag = static_cast<unsigned long long*>(agf_cluster_map(ds_flags() + 1 + r, p.nblk));
    } else {
        mail_in = p.mail + (static_cast<size_t>(chain) * (p.nblk + 1) + r) * hbox;
        mail_out = p.mail + (static_cast<size_t>(chain) * (p.nblk + 1) + r + 1) * hbox;
        skip_out = p.mail + mail_h_floats(p) + (static_cast<size_t>(chain) * p.nblk + r) * p.M * Sp;
        flag_in = p.flags + chain * (p.nblk + 1) + r;
        flag_out = p.flags + chain * (p.nblk + 1) + r + 1;
        skip_flag = p.flags + p.nchains * (p.nblk + 1) + chain * p.nblk + r;
    }
    agf_sync();  // (the weights are in shared memory from here)
    if constexpr (SH == 2) {
        AGF_UNROLL
        for (int li = 0; li < NLR; ++li)
            if (li < nl) {
                rcur[li].load(WCUR(li));
                rres[li].load(WRES(li));
            }
    }
    PhaseClock prof(prof_row(p, chain, r));

    for (int tt = 0; tt < p.Tc; ++tt) {
        const long long t = p.t0 + tt;
        // 1. past inputs of the dilated taps, from the ring buffers (not on the critical path)
        // 4 floats per load where R allows (ring rows of R floats, 16-byte aligned): with 8 or 16
        // streams a block gathers M x more of them per sample, each an L2 round trip
        const int q = p.R % 4 == 0 ? 4 : 1, ntap = nl * (K - 1) * M * Rp / q;
        for (int idx = tid; idx < ntap; idx += NT) {
            const int e = idx * q;
            const int i = e % Rp, m = (e / Rp) % M, k = (e / (Rp * M)) % (K - 1), li = e / (Rp * M * (K - 1));
            const int l = la + li, d = p.dil[l], Ml = (K - 1) * d;
            float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            if (i < p.R) {  // with q = 4 the quad is wholly inside the row (R, Rp multiples of 4)
                const float* src = p.hist + (static_cast<size_t>(s0 + m) * p.hist_rows + p.hoff[l] + ring_pos(t + k * d, Ml)) * p.R + i;
                if (q == 4) agf_ldcg4(src, v);
                else v[0] = agf_ldcg(src);
            }
            float* dst = taps + ((li * (K - 1) + k) * p.M + m) * Rp + i;
            AGF_UNROLL
            for (int j = 0; j < 4; ++j)  // constant indices: v stays in registers
                if (j < q) dst[j] = v[j];
        }
        agf_sync();
        prof.mark(L_TAPS);
        // 2. pre = conditioning + past taps' products, per own layer
        for (int li = 0; li < nl; ++li) {
            const float* cd0 = p.cond + (static_cast<size_t>(s0) * p.Tc + tt) * p.L * 2 * p.G2 +
                               static_cast<size_t>(la + li) * 2 * p.G2;
            float* pr0 = pre + li * p.M * 2 * G2p;
            block_matvec<WK, MT, 2>(WPAST(li), Rp, static_cast<ptrdiff_t>(tap_el), K - 1, G2p, Rp,
                              taps + li * (K - 1) * p.M * Rp, Rp, p.M * Rp, M,
                              [&](int c, int m, const float* a) {
                                  const float* cd = cd0 + static_cast<size_t>(m) * p.Tc * p.L * 2 * p.G2;
                                  float* pr = pr0 + m * 2 * G2p;
                                  pr[c] = c < p.G2 ? a[0] + cd[c] : 0.0f;
                                  pr[G2p + c] = c < p.G2 ? a[1] + cd[p.G2 + c] : 0.0f;
                              });
        }
        prof.mark(L_PRE);
        // 3. this sample's layer input from the previous block
        if (tid == 0) wait_flag<DS>(flag_in, p.tag + tt + 1);
        agf_sync();
        prof.mark(L_WAIT);
        for (int idx = tid; idx < M * Rp; idx += NT) h[idx] = rd<DS>(mail_in + idx);
        agf_sync();
        prof.mark(L_READ);
        // 4. the critical path: per layer the gate, then the residual rows only, from the layer's
        // input hin(li) into its output hin(li + 1). RG: the layer's critical matrices are in
        // registers (rcur / rres[li], li a compile-time index)
        auto layer_step = [&](auto li_c, auto regs) {
            constexpr bool RG = decltype(regs)::value;
            const int li = as_int(li_c);
            const int l = la + li;
            const float* hi = hin(li);
            float* ho = hout + li * p.M * Rp;
            const float* pr0 = pre + li * p.M * 2 * G2p;
            float* zl = z + li * p.M * G2p;
            auto gate = [&](int c, int m, const float* a) {
                const float* pr = pr0 + m * 2 * G2p;
                zl[m * G2p + c] = c < p.G2 ? tanhf(a[0] + pr[c]) * sigmoidf_(a[1] + pr[G2p + c]) : 0.0f;
            };
            if constexpr (RG) matvec_fixed_regs(rcur[as_int(li_c)], hi, gate);
            else if constexpr (SH >= 1) matvec_fixed<WK, 2, 64, 64, 256>(WCUR(li), hi, gate);
            else block_matvec<WK, MT, 2>(WCUR(li), Rp, 0, 1, G2p, Rp, hi, Rp, 0, M, gate);
            agf_sync();
            prof.mark(L_GATE);
            const float* bo = p.bos + static_cast<size_t>(l) * RS;
            auto residual = [&](int o, int m, const float* a) {
                ho[m * Rp + o] = (hi[m * Rp + o] + (a[0] + bo[o])) * 0.70710678118654752f;
            };
            if constexpr (RG) matvec_fixed_regs(rres[as_int(li_c)], zl, residual);
            else if constexpr (SH >= 1) matvec_fixed<WK, 1, 64, 64, 256>(WRES(li), zl, residual);
            else block_matvec<WK, MT, 1>(WRES(li), G2p, 0, 1, Rp, G2p, zl, G2p, 0, M, residual);
            agf_sync();
            prof.mark(L_RES);
        };
        int li0 = 0;
        if constexpr (SH == 2) {  // the register-resident layers, unrolled (li a constant in each copy)
            static_for<NLR>([&](auto c) {
                if (as_int(c) < nl) layer_step(c, std::true_type());
            });
            li0 = NLR;
        }
        for (int li = li0; li < nl; ++li) layer_step(li, std::false_type());
        // 5. hand h on at once; the skip rows are not needed before the output block
        if (!last) {
            const float* hl = hin(nl);
            for (int idx = tid; idx < M * Rp; idx += NT) mail_out[idx] = hl[idx];
            agf_sync();
            if (tid == 0) set_flag<DS>(flag_out, p.tag + tt + 1);
        }
        prof.mark(L_SEND);
        // 6. this block's skip partial: sum over own layers of Ws z + bs, straight to the output block
        for (int li = 0; li < nl; ++li) {
            const float* bs = p.bos + static_cast<size_t>(la + li) * RS + Rp;
            auto add_skip = [&](int o, int m, const float* a) {  // unit o maps to the same thread for every li
                const float v = a[0] + bs[o];
                skip[m * Sp + o] = li == 0 ? v : skip[m * Sp + o] + v;
            };
            if constexpr (SH >= 1) matvec_fixed<WK, 1, 128, 64, 256>(WSKIP(li), z + li * p.M * G2p, add_skip);
            else block_matvec<WK, MT, 1>(WSKIP(li), G2p, 0, 1, Sp, G2p, z + li * p.M * G2p, G2p, 0, M, add_skip);
        }
        agf_sync();
        for (int idx = tid; idx < M * Sp; idx += NT) skip_out[idx] = skip[idx];
        agf_sync();
        if (tid == 0) set_flag<DS>(skip_flag, p.tag + tt + 1);
        prof.mark(L_SKIP);
        // 7. every own layer's input joins its ring buffer (read from sample t + 1 on: the
        // barrier orders these stores before the next sample's tap loads)
        for (int idx = tid; idx < nl * M * p.R; idx += NT) {
            const int i = idx % p.R, m = (idx / p.R) % M, li = idx / (p.R * M);
            const int l = la + li, Ml = (K - 1) * p.dil[l];
            p.hist[(static_cast<size_t>(s0 + m) * p.hist_rows + p.hoff[l] + ring_pos(t, Ml)) * p.R + i] = hin(li)[m * Rp + i];
        }
        agf_sync();
    }
}

template <class WK>
AGF_DEV void embed(const Params& p, const float* xs, float* mail, int M) {
    for (int idx = agf_tid(); idx < M * p.Rp; idx += agf_nthreads()) {
        const int m = idx / p.Rp, j = idx % p.Rp;
        const float v = p.mode == 0 ? p.emb[static_cast<size_t>(xs[m]) * p.Rp + j] : xs[m] * p.emb[j];
        mail[idx] = v + p.emb_b[j];
    }
}

template <class WK, int MT, bool DS, int SH>
AGF_DEV void output_block(const Params& p, int chain) {
    using WT = typename WK::T;
    const int tid = agf_tid(), NT = agf_nthreads(), r = p.nblk;
    const int s0 = chain * p.M, M = p.M < p.B - s0 ? p.M : p.B - s0;
    const int Sp = p.Sp, Hp = p.Hp, OUTp = p.OUTp, Tc = p.Tc;
    const bool wsm = p.blk_wsmem[r] != 0;
    unsigned char* sm = static_cast<unsigned char*>(agf_smem()) + ds_head(p);
    WT* w1s = reinterpret_cast<WT*>(sm);
    WT* w2s = w1s + static_cast<size_t>(Hp) * Sp;
    float* y = reinterpret_cast<float*>(sm + round16(wsm ? out_w_elems(p) * sizeof(WT) : 0));  // [M][Sp]
    float* hid = y + p.M * Sp;     // [M][Hp]
    float* lg = hid + p.M * Hp;    // [M][OUTp]
    float* xs = lg + p.M * OUTp;   // [M] the current input of each stream
    if (wsm) {
        copy_to_smem(w1s, p.w1, static_cast<size_t>(Hp) * Sp * sizeof(WT));
        copy_to_smem(w2s, p.w2, static_cast<size_t>(OUTp) * Hp * sizeof(WT));
    }
    const WT* W1 = wsm ? w1s : static_cast<const WT*>(p.w1);
    const WT* W2 = wsm ? w2s : static_cast<const WT*>(p.w2);
    float* mail_out;                 // block 0's h inbox
    const float* skip_in;            // [nblk][M][Sp]
    const unsigned long long* skip_flags;
    unsigned long long* flag_out;
    if (DS) {
        mail_out = static_cast<float*>(agf_cluster_map(ds_hin(), 0));
        flag_out = static_cast<unsigned long long*>(agf_cluster_map(ds_flags(), 0));
        skip_in = ds_skin(p, sizeof(WT));
        skip_flags = ds_flags() + 1;
    } else {
        mail_out = p.mail + static_cast<size_t>(chain) * (p.nblk + 1) * p.M * p.Rp;
        skip_in = p.mail + mail_h_floats(p) + static_cast<size_t>(chain) * p.nblk * p.M * Sp;
        skip_flags = p.flags + p.nchains * (p.nblk + 1) + chain * p.nblk;
        flag_out = p.flags + chain * (p.nblk + 1);
    }
    if (tid < M) xs[tid] = p.teacher ? p.teacher_in[static_cast<size_t>(s0 + tid) * Tc] : p.x[s0 + tid];
    agf_sync();
    embed<WK>(p, xs, mail_out, M);
    agf_sync();
    if (tid == 0) set_flag<DS>(flag_out, p.tag + 1);
    PhaseClock prof(prof_row(p, chain, r));

    for (int tt = 0; tt < Tc; ++tt) {
        // every layer block's skip partial for this sample (the last one arrives last)
        for (int i = tid; i < p.nblk; i += NT) wait_flag<DS>(skip_flags + i, p.tag + tt + 1);
        agf_sync();
        prof.mark(O_WAIT);
        for (int idx = tid; idx < M * Sp; idx += NT) {
            float acc = 0.0f;
            for (int b = 0; b < p.nblk; ++b) acc += rd<DS>(skip_in + static_cast<size_t>(b) * p.M * Sp + idx);
            y[idx] = fmaxf(acc * p.skip_scale, 0.0f);
        }
        agf_sync();
        prof.mark(O_SUM);
        auto hidden = [&](int o, int m, const float* a) { hid[m * Hp + o] = fmaxf(a[0] + p.b1[o], 0.0f); };
        // (the fixed-shape instance calls the product once per placement, so each call's pointer
        // is known to be shared (LDS) or global, not a generic one)
        if constexpr (SH >= 1) {
            if (wsm) matvec_fixed<WK, 1, 128, 128, 256>(w1s, y, hidden);
            else matvec_fixed<WK, 1, 128, 128, 256>(static_cast<const WT*>(p.w1), y, hidden);
        } else {
            block_matvec<WK, MT, 1>(W1, Sp, 0, 1, Hp, Sp, y, Sp, 0, M, hidden);
        }
        agf_sync();
        prof.mark(O_HIDDEN);
        auto logits = [&](int o, int m, const float* a) { lg[m * OUTp + o] = a[0] + p.b2[o]; };
        if constexpr (SH >= 1) {
            if (wsm) matvec_fixed<WK, 1, 256, 128, 256>(w2s, hid, logits);
            else matvec_fixed<WK, 1, 256, 128, 256>(static_cast<const WT*>(p.w2), hid, logits);
        } else {
            block_matvec<WK, MT, 1>(W2, Hp, 0, 1, OUTp, Hp, hid, Hp, 0, M, logits);
        }
        agf_sync();
        prof.mark(O_LOGITS);
        if (p.teacher) {
            for (int idx = tid; idx < M * p.OUT; idx += NT) {
                const int m = idx / p.OUT, o = idx % p.OUT;
                p.logits[(static_cast<size_t>(s0 + m) * Tc + tt) * p.OUT + o] = lg[m * OUTp + o];
            }
            if (tid < M) p.out[static_cast<size_t>(s0 + tid) * Tc + tt] = xs[tid];
        } else {
            for (int m = tid / 32; m < M; m += NT / 32) {
                const float v = warp_sample(p, lg + m * OUTp, p.noise + (static_cast<size_t>(s0 + m) * Tc + tt) * p.nz);
                if ((tid & 31) == 0) {
                    xs[m] = v;
                    p.out[static_cast<size_t>(s0 + m) * Tc + tt] = v;
                }
            }
        }
        agf_sync();
        prof.mark(O_SAMPLE);
        if (tt + 1 < Tc) {
            if (p.teacher && tid < M) xs[tid] = p.teacher_in[static_cast<size_t>(s0 + tid) * Tc + tt + 1];
            agf_sync();
            embed<WK>(p, xs, mail_out, M);
            agf_sync();
            if (tid == 0) set_flag<DS>(flag_out, p.tag + tt + 2);
        }
        prof.mark(O_EMBED);
    }
    if (tid < M) p.x[s0 + tid] = xs[tid];
}

template <class WK, int MT, bool DS, int SH>
AGF_KERNEL void AGF_LAUNCH_BOUNDS(MAX_THREADS) wavenet_persistent_kernel(const Params p) {
    const int chain = agf_bid() / (p.nblk + 1), r = agf_bid() % (p.nblk + 1);
    if (DS) {  // every flag in the cluster is zero before anyone may set one
        if (agf_tid() < MAX_CLUSTER) ds_flags()[agf_tid()] = 0;
        agf_cluster_sync();
    }
    if (r == p.nblk) output_block<WK, MT, DS, SH>(p, chain);
    else layer_block<WK, MT, DS, SH>(p, chain, r);
    if (DS) agf_cluster_sync();  // no block leaves while a peer may still write its shared memory
}

// The kernel instance for weight type wtype (0 fp32, 1 fp16, 2 bf16), MT streams per chain (1, 8
// or 16: tensor cores for 16-bit weights) and shape variant SH (shape_variant(); MT = 1 only), for
// the launchers of both transports (wavenet_persistent.cu, wavenet_persistent_cluster.cu).
using KernelFn = void (*)(const Params);

template <bool DS, int MT, int SH>
inline KernelFn kernel_for(int wtype) {
    return wtype == 0 ? wavenet_persistent_kernel<F32, MT, DS, SH>
         : wtype == 1 ? wavenet_persistent_kernel<F16, MT, DS, SH> : wavenet_persistent_kernel<BF16, MT, DS, SH>;
}

template <bool DS>
inline KernelFn pick_kernel(int wtype, int MT, int SH) {
    if (MT == 1) return SH == 2 ? kernel_for<DS, 1, 2>(wtype) : SH == 1 ? kernel_for<DS, 1, 1>(wtype) : kernel_for<DS, 1, 0>(wtype);
    return MT == 8 ? kernel_for<DS, 8, 0>(wtype) : kernel_for<DS, 16, 0>(wtype);
}

}  // namespace wnp
}  // namespace agf
