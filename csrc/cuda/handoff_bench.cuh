// Floor measurement for the persistent kernels (benchmarks/NOTES_GPU.md): a token goes round a
// ring of `nblk` blocks `iters` times through the same mailbox protocol the WaveNet kernel uses
// (payload written by the block's threads, barrier, fence + release flag; the next block's thread 0
// spins on an acquire load, barrier, the payload read with L1-bypassing loads). Each block adds 1
// to payload[0] on the way, so the result checks the protocol: payload[0] == iters * nblk.
// Time per hand-off = kernel time / (iters * nblk) (the host times the launch with CUDA events).
#pragma once
#include "compat.h"
#include "kernel_common.cuh"
#include "handoff_params.h"

namespace agf {
namespace hob {



// Message k (k = 0 .. iters * nblk - 1) goes from block k % nblk to the next, stamped tag + k + 1.
AGF_KERNEL void AGF_LAUNCH_BOUNDS(256) handoff_kernel(const Params p) {
    const int r = agf_bid(), tid = agf_tid(), NT = agf_nthreads(), n = p.nblk;
    const long long K = static_cast<long long>(p.iters) * n;
    float* sm = static_cast<float*>(agf_smem());
    const float* in = p.mail + static_cast<size_t>(r) * p.payload;
    const int nxt = (r + 1) % n;
    float* out = p.mail + static_cast<size_t>(nxt) * p.payload;
    if (r == 0) {  // message 0: the token, zeros
        for (int i = tid; i < p.payload; i += NT) out[i] = 0.0f;
        agf_sync();
        if (tid == 0) agf_publish(p.flags + 16 * nxt, p.tag + 1);
    }
    for (int j = 0; j < p.iters; ++j) {
        const long long k = r == 0 ? static_cast<long long>(j + 1) * n - 1 : (r - 1) + static_cast<long long>(j) * n;
        if (tid == 0) agf_wait_eq(p.flags + 16 * r, p.tag + k + 1);
        agf_sync();
        for (int i = tid; i < p.payload; i += NT) sm[i] = agf_ldcg(in + i) + (i == 0 ? 1.0f : 0.0f);
        agf_sync();
        float* dst = k + 1 < K ? out : p.result;
        for (int i = tid; i < p.payload; i += NT) dst[i] = sm[i];
        if (k + 1 < K) {
            agf_sync();
            if (tid == 0) agf_publish(p.flags + 16 * nxt, p.tag + k + 2);
        }
    }
}

}  // namespace hob
}  // namespace agf
