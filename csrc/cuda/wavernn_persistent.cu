// nvcc instantiation and launch of the WaveRNN persistent kernel (wavernn_persistent.cuh).
// Cooperative launch: the blocks of a chain wait on each other's flags, so all must be resident.
#include <cuda_runtime.h>

#include "wavernn_persistent.cuh"

namespace agf {
namespace wrp {

using KernelFn = void (*)(const Params);

static KernelFn pick(int wtype, int MT) {
    if (MT == 1) return wtype == 0 ? wavernn_persistent_kernel<F32, 1>
                      : wtype == 1 ? wavernn_persistent_kernel<F16, 1> : wavernn_persistent_kernel<BF16, 1>;
    return wtype == 0 ? wavernn_persistent_kernel<F32, MAX_STREAMS>
         : wtype == 1 ? wavernn_persistent_kernel<F16, MAX_STREAMS> : wavernn_persistent_kernel<BF16, MAX_STREAMS>;
}

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

cudaError_t launch(const Params& p, int wtype, int MT, int threads, size_t smem, cudaStream_t stream) {
    KernelFn k = pick(wtype, MT);
    cudaError_t e = cudaFuncSetAttribute(reinterpret_cast<const void*>(k), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    Params copy = p;
    void* args[] = {&copy};
    const unsigned grid = static_cast<unsigned>(p.nchains * p.nblk);
    return cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(k), dim3(grid), dim3(threads), args, smem, stream);
}

}  // namespace wrp
}  // namespace agf
