// nvcc launch of the hand-off ring microbenchmark (handoff_bench.cuh) and of an empty kernel (launch latency).
#include <cuda_runtime.h>

#include "handoff_bench.cuh"
#include "launch_util.cuh"

namespace agf {
namespace hob {

__global__ void empty_kernel() {}

cudaError_t launch(const Params& p, int threads, cudaStream_t stream) {
    return cooperative_launch(handoff_kernel, p, static_cast<unsigned>(p.nblk), threads,
                              static_cast<size_t>(p.payload) * sizeof(float), stream);
}

cudaError_t launch_empty(int n, cudaStream_t stream) {
    for (int i = 0; i < n; ++i) empty_kernel<<<1, 32, 0, stream>>>();
    return cudaGetLastError();
}

}  // namespace hob
}  // namespace agf
