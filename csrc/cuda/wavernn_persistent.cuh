// WaveRNN persistent kernel: a whole chunk of WaveRNN steps in one launch, the weights spread
// over a chain of nblk blocks (one per SM) and kept in their shared memory. Compiled by nvcc
// (wavernn_persistent.cu) and by the CPU emulator (csrc/cuda_emu_bindings.cpp) from this one
// source; the reference is the eager step loop (audiogen_fast/models/wavernn/runtime.py,
// TorchLoop), whose step-independent projections (pre_I, pre_2, pre_f1, pre_f2) are hoisted out
// of the loop the same way here (computed by torch per chunk).
//
// Block b owns GRU units [split(R, b), split(R, b+1)) (their r, z, n rows of W_ih1, W_hh1, W_ih2,
// W_hh2, so each GRU update is local), and rows of fc1, fc2, fc3. Per step, for M streams in
// lockstep:
//   h  = pre_I[t] + x * w_ix                 (every block, the whole vector: x is known to all)
//   S1 own units: GRU1 -> publish [h1' | x1 = h1' + h]      gather -> h1, x1
//   S2 own units: GRU2 (input x1) -> [h2' | x2 = h2' + x1]  gather -> h2, x2
//   S3 own rows: y1 = relu(W_f1 x2 + pre_f1)  publish; then W_hh1 h1 and W_hh2 h2 for the next
//      step while the gather is under way (they do not depend on the next sample)
//   S4 own rows: y2 = relu(W_f2 y1 + pre_f2)  S5 own rows: logits = W_f3 y2 + b_f3
//   every block gathers the logits and samples with the float64 rule of audiogen_fast.sampling:
//   all blocks get the same x, so the sample needs no broadcast.
// A gather: each block writes its slice of the stage's vector to a per-chain buffer in global
// memory, then publishes a step stamp (tag + 8 t + stage) on its own flag with a release store;
// the readers wait (acquire) until every block's flag is >= the stamp. One flag per block
// serves all stages because stamps only grow; a stage buffer is rewritten only after a later
// stage's gather, which no block passes before every block has read it.
#pragma once
#include "compat.h"
#include "kernel_common.cuh"
#include "wavernn_persistent_params.h"

namespace agf {
namespace wrp {

AGF_DEV float warp_sample_wavernn(const Params& p, const float* lg, const float* nz, int* cls) {
    if (p.mode == 0) {
        const int k = warp_inverse_cdf_fast(lg, p.OUT, nz[0]);
        *cls = k;
        return agf_div_rn(2.0f * static_cast<float>(k), static_cast<float>(p.OUT - 1)) - 1.0f;  // label_to_float, exact
    }
    *cls = 0;
    return p.mode == 1 ? warp_mol_sample(lg, p.n_mix, nz, p.log_scale_min) : gaussian_sample(lg, nz[0], p.log_scale_min);
}

// One GRU unit's update (PyTorch gate order r, z, n): a = W_ih x (the unit's three rows), the input
// biases / hoisted input parts at bi[0], bi[stride], bi[2 stride], gh = W_hh h + b_hh, h the old state.
AGF_DEV float gru_update(const float* a, const float* bi, int stride, const float* gh, float h) {
    const float r = sigmoidf_(a[0] + bi[0] + gh[0]);
    const float z = sigmoidf_(a[1] + bi[stride] + gh[1]);
    const float n = tanhf(a[2] + bi[2 * stride] + r * gh[2]);
    return n + z * (h - n);
}

// every block's flag >= stamp (threads split the flags), then a barrier
AGF_DEV void gather_wait(const Params& p, int chain, unsigned long long stamp) {
    const unsigned long long* f = p.flags + static_cast<size_t>(chain) * p.nblk * FLAG_STRIDE;
    for (int i = agf_tid(); i < p.nblk; i += agf_nthreads()) agf_wait_ge(f + static_cast<size_t>(i) * FLAG_STRIDE, stamp);
    agf_sync();
}

// WSM: every block keeps its rows in shared memory (p.wsmem): the weight pointers then derive from
// the shared array alone and the products load with LDS (a pointer that may be shared or global
// compiles to generic loads)
template <class WK, int MT, bool WSM>
AGF_DEV void wavernn_block(const Params& p, int chain, int b) {
    using WT = typename WK::T;
    const int tid = agf_tid(), NT = agf_nthreads();
    const int Rp = p.Rp, Fp = p.Fp, OUTp = p.OUTp, R = p.R, Tc = p.Tc;
    const int s0 = chain * p.M, M = p.M < p.B - s0 ? p.M : p.B - s0;
    const int u0 = split(R, b, p.nblk), nu = split(R, b + 1, p.nblk) - u0;
    const int f0 = split(p.F, b, p.nblk), nf = split(p.F, b + 1, p.nblk) - f0;
    const int o0 = split(p.OUT, b, p.nblk), no = split(p.OUT, b + 1, p.nblk) - o0;
    const int umax8 = ((R + p.nblk - 1) / p.nblk + 7) / 8 * 8;
    const size_t g = static_cast<size_t>(nu) * 3 * Rp;  // one GRU matrix's rows of this block

    // weights: this block's rows, in shared memory (or read in place from global memory)
    unsigned char* sm = static_cast<unsigned char*>(agf_smem());
    const WT* w_ih1 = static_cast<const WT*>(p.w_ih1) + static_cast<size_t>(u0) * 3 * Rp;
    const WT* w_hh1 = static_cast<const WT*>(p.w_hh1) + static_cast<size_t>(u0) * 3 * Rp;
    const WT* w_ih2 = static_cast<const WT*>(p.w_ih2) + static_cast<size_t>(u0) * 3 * Rp;
    const WT* w_hh2 = static_cast<const WT*>(p.w_hh2) + static_cast<size_t>(u0) * 3 * Rp;
    const WT* w_f1 = static_cast<const WT*>(p.w_f1) + static_cast<size_t>(f0) * Rp;
    const WT* w_f2 = static_cast<const WT*>(p.w_f2) + static_cast<size_t>(f0) * Fp;
    const WT* w_f3 = static_cast<const WT*>(p.w_f3) + static_cast<size_t>(o0) * Fp;
    size_t wbytes = 0;
    if constexpr (WSM) {
        WT* ws = reinterpret_cast<WT*>(sm);
        size_t off = 0;
        auto place = [&](const WT* src, size_t n) -> const WT* {  // every piece a multiple of 8 elements
            WT* d = ws + off;                                      // (16-byte aligned)
            copy_to_smem(d, src, n * sizeof(WT));
            off += n;
            return d;
        };
        w_ih1 = place(w_ih1, g);
        w_hh1 = place(w_hh1, g);
        w_ih2 = place(w_ih2, g);
        w_hh2 = place(w_hh2, g);
        w_f1 = place(w_f1, static_cast<size_t>(nf) * Rp);
        w_f2 = place(w_f2, static_cast<size_t>(nf) * Fp);
        w_f3 = place(w_f3, static_cast<size_t>(no) * Fp);
        wbytes = (off * sizeof(WT) + 15) & ~static_cast<size_t>(15);
    }
    float* h = reinterpret_cast<float*>(sm + wbytes);  // [M][Rp] the GRU1 input of this step
    float* h1 = h + p.M * Rp;      // [M][Rp] GRU1 state (all units)
    float* x1 = h1 + p.M * Rp;     // [M][Rp]
    float* h2 = x1 + p.M * Rp;     // [M][Rp]
    float* x2 = h2 + p.M * Rp;     // [M][Rp]
    float* y1 = x2 + p.M * Rp;     // [M][Fp]
    float* y2 = y1 + p.M * Fp;     // [M][Fp]
    float* lg = y2 + p.M * Fp;     // [M][OUTp]
    float* gh1 = lg + p.M * OUTp;  // [M][3 umax8] W_hh1 h1 + b_hh1 of this block's units
    float* gh2 = gh1 + p.M * 3 * umax8;
    float* xs = gh2 + p.M * 3 * umax8;  // [M] the current input sample

    const int W = stage_width(p);
    float* vbuf = p.xbuf + static_cast<size_t>(chain) * 5 * p.M * W;  // [5][M][W]
    auto V = [&](int stage, int m) { return vbuf + (static_cast<size_t>(stage) * p.M + m) * W; };
    unsigned long long* my_flag = p.flags + (static_cast<size_t>(chain) * p.nblk + b) * FLAG_STRIDE;
    auto stamp = [&](int t, int stage) { return p.tag + 8ull * static_cast<unsigned long long>(t) + stage; };
    auto publish = [&](unsigned long long s) {
        agf_sync();
        if (tid == 0) agf_publish(my_flag, s);
    };
    // V(stage) -> lo [M][wlo] (| hi [M][Rp]); `real` entries of each part were written, the
    // padding is read as zeros (the buffer is reused by launches of other layouts)
    PhaseClock prof(p.prof ? p.prof + (static_cast<size_t>(chain) * p.nblk + b) * NPHASE : nullptr);
    auto gather = [&](int stage, float* lo, int wlo, float* hi, int real, int t) {
        gather_wait(p, chain, stamp(t, stage + 1));
        prof.mark(P_WAIT);
        // 4 floats per load (w and wlo are multiples of 8, rows of V 16-byte aligned): a thread's
        // loads are L2 round trips that its shared-memory stores would otherwise serialise
        const int w = hi ? wlo + Rp : wlo;
        for (int iv = tid; iv < M * w / 4; iv += NT) {
            const int m = (4 * iv) / w, j0 = (4 * iv) % w;
            float v[4];
            agf_ldcg4(V(stage, m) + j0, v);
            for (int k = 0; k < 4; ++k) {
                const int j = j0 + k;
                const float x = (j < wlo ? j : j - wlo) < real ? v[k] : 0.0f;  // padding reads as zeros
                if (j < wlo) lo[m * wlo + j] = x;
                else hi[m * Rp + j - wlo] = x;
            }
        }
        agf_sync();
        prof.mark(P_READ);
    };
    // the recurrent products for the next step: W_hh h + b_hh, this block's units
    auto recurrent = [&](const WT* w, const float* hv, const float* bias, float* gh) {
        matvec<WK, MT, 3>(w, Rp, 0, 1, nu, Rp, hv, Rp, 0, M, [&](int u, int m, const float* a) {
            for (int r = 0; r < 3; ++r) gh[m * 3 * umax8 + 3 * u + r] = a[r] + bias[3 * (u0 + u) + r];
        });
    };

    for (int idx = tid; idx < M * Rp; idx += NT) {
        const int m = idx / Rp, i = idx % Rp;
        h1[idx] = i < R ? p.h1[static_cast<size_t>(s0 + m) * R + i] : 0.0f;
        h2[idx] = i < R ? p.h2[static_cast<size_t>(s0 + m) * R + i] : 0.0f;
    }
    if (tid < M) xs[tid] = p.x[s0 + tid];
    agf_sync();
    recurrent(w_hh1, h1, p.b_hh1, gh1);
    recurrent(w_hh2, h2, p.b_hh2, gh2);
    agf_sync();
    prof.restart();  // the setup above is not a step's

    for (int t = 0; t < Tc; ++t) {
        if (p.teacher) {
            if (tid < M) xs[tid] = p.teacher_in[static_cast<size_t>(s0 + tid) * Tc + t];
            agf_sync();
        }
        for (int idx = tid; idx < M * Rp; idx += NT) {
            const int m = idx / Rp, i = idx % Rp;
            h[idx] = i < R ? p.pre_I[(static_cast<size_t>(s0 + m) * Tc + t) * R + i] + xs[m] * p.w_ix[i] : 0.0f;
        }
        agf_sync();
        prof.mark(P_INPUT);
        // S1: GRU1 (gate order r, z, n) on this block's units
        matvec<WK, MT, 3>(w_ih1, Rp, 0, 1, nu, Rp, h, Rp, 0, M, [&](int u, int m, const float* a) {
            const int j = u0 + u;
            const float hn = gru_update(a, p.b_ih1 + 3 * j, 1, gh1 + m * 3 * umax8 + 3 * u, h1[m * Rp + j]);
            V(0, m)[j] = hn;
            V(0, m)[Rp + j] = hn + h[m * Rp + j];
        });
        publish(stamp(t, 1));
        prof.mark(P_GRU1);
        gather(0, h1, Rp, x1, R, t);
        // S2: GRU2 with input x1 (its a2 part is in pre_2)
        matvec<WK, MT, 3>(w_ih2, Rp, 0, 1, nu, Rp, x1, Rp, 0, M, [&](int u, int m, const float* a) {
            const int j = u0 + u;
            const float* pre = p.pre_2 + (static_cast<size_t>(s0 + m) * Tc + t) * 3 * R + j;  // gates R apart
            const float hn = gru_update(a, pre, R, gh2 + m * 3 * umax8 + 3 * u, h2[m * Rp + j]);
            V(1, m)[j] = hn;
            V(1, m)[Rp + j] = hn + x1[m * Rp + j];
        });
        publish(stamp(t, 2));
        prof.mark(P_GRU2);
        gather(1, h2, Rp, x2, R, t);
        // S3: fc1; then next step's recurrent products while the others catch up
        matvec<WK, MT, 1>(w_f1, Rp, 0, 1, nf, Rp, x2, Rp, 0, M, [&](int o, int m, const float* a) {
            V(2, m)[f0 + o] = fmaxf(a[0] + p.pre_f1[(static_cast<size_t>(s0 + m) * Tc + t) * p.F + f0 + o], 0.0f);
        });
        publish(stamp(t, 3));
        prof.mark(P_FC1);
        recurrent(w_hh1, h1, p.b_hh1, gh1);
        recurrent(w_hh2, h2, p.b_hh2, gh2);
        prof.mark(P_RECURRENT);  // thread 0's share: the block's rest shows in the next wait
        gather(2, y1, Fp, nullptr, p.F, t);
        // S4: fc2
        matvec<WK, MT, 1>(w_f2, Fp, 0, 1, nf, Fp, y1, Fp, 0, M, [&](int o, int m, const float* a) {
            V(3, m)[f0 + o] = fmaxf(a[0] + p.pre_f2[(static_cast<size_t>(s0 + m) * Tc + t) * p.F + f0 + o], 0.0f);
        });
        publish(stamp(t, 4));
        prof.mark(P_FC2);
        gather(3, y2, Fp, nullptr, p.F, t);
        // S5: fc3 -> logits; teacher-forced: written out by their owners, no gather
        matvec<WK, MT, 1>(w_f3, Fp, 0, 1, no, Fp, y2, Fp, 0, M, [&](int o, int m, const float* a) {
            const float v = a[0] + p.b_f3[o0 + o];
            if (p.teacher) p.logits[(static_cast<size_t>(s0 + m) * Tc + t) * p.OUT + o0 + o] = v;
            else V(4, m)[o0 + o] = v;
        });
        if (!p.teacher) {
            publish(stamp(t, 5));
            prof.mark(P_FC3);
            gather(4, lg, OUTp, nullptr, p.OUT, t);
            for (int m = tid / 32; m < M; m += NT / 32) {
                int k = 0;
                const float v = warp_sample_wavernn(p, lg + m * OUTp, p.noise + (static_cast<size_t>(s0 + m) * Tc + t) * p.nz, &k);
                if ((tid & 31) == 0) {
                    xs[m] = v;
                    if (b == 0) {
                        p.out[static_cast<size_t>(s0 + m) * Tc + t] = v;
                        if (p.cls) p.cls[static_cast<size_t>(s0 + m) * Tc + t] = k;
                    }
                }
            }
        }
        agf_sync();
        prof.mark(p.teacher ? P_FC3 : P_SAMPLE);
    }
    // the state: this block's units; the input sample from block 0
    for (int idx = tid; idx < M * nu; idx += NT) {
        const int m = idx / nu, j = u0 + idx % nu;
        p.h1[static_cast<size_t>(s0 + m) * R + j] = h1[m * Rp + j];
        p.h2[static_cast<size_t>(s0 + m) * R + j] = h2[m * Rp + j];
    }
    if (b == 0 && tid < M) p.x[s0 + tid] = xs[tid];
}

template <class WK, int MT, bool WSM>
AGF_KERNEL void AGF_LAUNCH_BOUNDS(MAX_THREADS) wavernn_persistent_kernel(const Params p) {
    wavernn_block<WK, MT, WSM>(p, agf_bid() / p.nblk, agf_bid() % p.nblk);
}

// the instance for a weight type (0 fp32, 1 fp16, 2 bf16), streams per chain (1 or MAX_STREAMS)
// and weight placement (the plan's wsmem); a plain function on the emulator
using KernelFn = void (*)(const Params);

template <int MT, bool WSM>
inline KernelFn kernel_for(int wtype) {
    return wtype == 0 ? wavernn_persistent_kernel<F32, MT, WSM>
         : wtype == 1 ? wavernn_persistent_kernel<F16, MT, WSM> : wavernn_persistent_kernel<BF16, MT, WSM>;
}

inline KernelFn pick_kernel(int wtype, int MT, bool wsmem) {
    if (MT == 1) return wsmem ? kernel_for<1, true>(wtype) : kernel_for<1, false>(wtype);
    return wsmem ? kernel_for<MAX_STREAMS, true>(wtype) : kernel_for<MAX_STREAMS, false>(wtype);
}

}  // namespace wrp
}  // namespace agf
