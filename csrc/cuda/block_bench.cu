// nvcc launches of block_bench.cuh: the block-wide product floor and the warp sampler harness.
#include <cuda_runtime.h>

#include "block_bench.cuh"

namespace agf {
namespace bb {

cudaError_t launch_matvec(const MatvecParams& p, int wtype, int threads, cudaStream_t stream) {
    const size_t smem = matvec_smem(p, wtype == 0 ? 4 : 2);
    cudaError_t e = cudaSuccess;
    matvec_dispatch(p, wtype, [&](auto wk, auto nr, auto shape) {
        auto* k = matvec_bench_kernel<decltype(wk), decltype(nr)::value, decltype(shape)::value>;
        e = cudaFuncSetAttribute(reinterpret_cast<const void*>(k), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(smem));
        if (e != cudaSuccess) return;
        k<<<1, threads, smem, stream>>>(p);
        e = cudaGetLastError();
    });
    return e;
}

cudaError_t launch_sampler(const SamplerParams& p, int rows, cudaStream_t stream) {
    if (rows <= 0) return cudaSuccess;
    warp_sampler_kernel<<<rows, 32, 0, stream>>>(p);
    return cudaGetLastError();
}

}  // namespace bb
}  // namespace agf
