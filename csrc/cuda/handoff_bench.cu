// nvcc launch of the hand-off ring microbenchmark (handoff_bench.cuh) and of an empty kernel (launch latency).
#include <cuda_runtime.h>

#include "handoff_bench.cuh"

namespace agf {
namespace hob {

__global__ void empty_kernel() {}

cudaError_t launch(const Params& p, int threads, cudaStream_t stream) {
    const size_t smem = static_cast<size_t>(p.payload) * sizeof(float);
    cudaError_t e = cudaFuncSetAttribute(reinterpret_cast<const void*>(handoff_kernel),
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    Params copy = p;
    void* args[] = {&copy};
    return cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(handoff_kernel), dim3(p.nblk), dim3(threads), args,
                                       smem, stream);
}

cudaError_t launch_empty(int n, cudaStream_t stream) {
    for (int i = 0; i < n; ++i) empty_kernel<<<1, 32, 0, stream>>>();
    return cudaGetLastError();
}

}  // namespace hob
}  // namespace agf
