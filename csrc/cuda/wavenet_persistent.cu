// nvcc instantiation and launch of the WaveNet persistent kernel (wavenet_persistent.cuh), global
// memory transport. Cooperative launch: the blocks of a chain spin on each other's flags, so they
// must all be resident at once; the driver refuses (cudaErrorCooperativeLaunchTooLarge) rather
// than hang. The cluster (distributed shared memory) transport: wavenet_persistent_cluster.cu.
#include <cuda_runtime.h>

#include "wavenet_persistent.cuh"

namespace agf {
namespace wnp {

using KernelFn = void (*)(const Params);

static KernelFn pick(int wtype, int MT) {
    if (MT == 1) return wtype == 0 ? wavenet_persistent_kernel<F32, 1, false>
                      : wtype == 1 ? wavenet_persistent_kernel<F16, 1, false> : wavenet_persistent_kernel<BF16, 1, false>;
    return wtype == 0 ? wavenet_persistent_kernel<F32, 8, false>
         : wtype == 1 ? wavenet_persistent_kernel<F16, 8, false> : wavenet_persistent_kernel<BF16, 8, false>;
}

// blocks of this configuration that can be resident on the whole GPU at once
cudaError_t max_resident_blocks(int wtype, int MT, int threads, size_t smem, int* out) {
    KernelFn k = pick(wtype, MT);
    cudaError_t e = cudaFuncSetAttribute(reinterpret_cast<const void*>(k), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    int dev = 0, per_sm = 0, sms = 0;
    if ((e = cudaGetDevice(&dev)) != cudaSuccess) return e;
    if ((e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev)) != cudaSuccess) return e;
    if ((e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, reinterpret_cast<const void*>(k), threads, smem)) !=
        cudaSuccess)
        return e;
    *out = per_sm * sms;
    return cudaSuccess;
}

cudaError_t launch_cluster(const Params& p, int wtype, int MT, int threads, size_t smem, cudaStream_t stream);

cudaError_t launch(const Params& p, int wtype, int MT, int threads, size_t smem, cudaStream_t stream) {
    if (p.dsmem) return launch_cluster(p, wtype, MT, threads, smem, stream);
    KernelFn k = pick(wtype, MT);
    cudaError_t e = cudaFuncSetAttribute(reinterpret_cast<const void*>(k), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    Params copy = p;
    void* args[] = {&copy};
    const unsigned grid = static_cast<unsigned>(p.nchains * (p.nblk + 1));
    return cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(k), dim3(grid), dim3(threads), args, smem, stream);
}

}  // namespace wnp
}  // namespace agf
