// Host-side launch helpers shared by the persistent kernels' .cu files: how many blocks of a
// kernel the whole GPU holds at once, and the cooperative launch (all blocks resident, or an
// error instead of a hang) with the kernel's dynamic shared memory opted in.
#pragma once
#include <cuda_runtime.h>

namespace agf {

template <class P>
cudaError_t resident_blocks(void (*k)(const P), int threads, size_t smem, int* out) {
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

template <class P>
cudaError_t cooperative_launch(void (*k)(const P), const P& p, unsigned grid, int threads, size_t smem,
                               cudaStream_t stream) {
    cudaError_t e = cudaFuncSetAttribute(reinterpret_cast<const void*>(k), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    P copy = p;
    void* args[] = {&copy};
    return cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(k), dim3(grid), dim3(threads), args, smem, stream);
}

}  // namespace agf
