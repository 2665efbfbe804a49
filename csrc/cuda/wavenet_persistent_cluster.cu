// nvcc instantiation and launch of the WaveNet persistent kernel with the distributed-shared-
// memory transport (wavenet_persistent.cuh, DS = true): one chain = one thread-block cluster of
// nblk + 1 blocks (up to 8 portable, 16 with the non-portable size). The hardware schedules a
// cluster's blocks together and chains never wait on each other, so no cooperative launch is
// needed: chains beyond what the GPU holds at once simply run when a cluster's SMs free up.
// sm_90 only (the host never launches it on older GPUs; there its device code traps).
#include <cuda_runtime.h>

#include "wavenet_persistent.cuh"

namespace agf {
namespace wnp {

static KernelFn pick_ds(int wtype, int MT, int SH) { return pick_kernel<true>(wtype, MT, SH); }

static void config(cudaLaunchConfig_t& cfg, cudaLaunchAttribute* attr, const Params& p, int threads, size_t smem,
                   cudaStream_t stream) {
    cfg = cudaLaunchConfig_t{};
    cfg.gridDim = dim3(static_cast<unsigned>(p.nchains * (p.nblk + 1)));
    cfg.blockDim = dim3(static_cast<unsigned>(threads));
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = static_cast<unsigned>(p.nblk + 1);
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
}

static cudaError_t prepare(KernelFn k, const Params& p, size_t smem) {
    cudaError_t e = cudaFuncSetAttribute(reinterpret_cast<const void*>(k), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e == cudaSuccess && p.nblk + 1 > 8)
        e = cudaFuncSetAttribute(reinterpret_cast<const void*>(k), cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
    return e;
}

cudaError_t launch_cluster(const Params& p, int wtype, int MT, int threads, size_t smem, cudaStream_t stream) {
    KernelFn k = pick_ds(wtype, MT, shape_variant(p, threads));
    cudaError_t e = prepare(k, p, smem);
    if (e != cudaSuccess) return e;
    cudaLaunchConfig_t cfg;
    cudaLaunchAttribute attr[1];
    config(cfg, attr, p, threads, smem, stream);
    return cudaLaunchKernelEx(&cfg, k, p);
}

// clusters of this shape the GPU can hold at once (0: not even one, e.g. too much shared memory)
cudaError_t max_active_clusters(const Params& p, int wtype, int MT, int threads, size_t smem, int* out) {
    KernelFn k = pick_ds(wtype, MT, shape_variant(p, threads));
    cudaError_t e = prepare(k, p, smem);
    if (e != cudaSuccess) return e;
    cudaLaunchConfig_t cfg;
    cudaLaunchAttribute attr[1];
    config(cfg, attr, p, threads, smem, nullptr);
    return cudaOccupancyMaxActiveClusters(out, reinterpret_cast<const void*>(k), &cfg);
}

}  // namespace wnp
}  // namespace agf
