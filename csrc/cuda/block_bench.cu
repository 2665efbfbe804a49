// nvcc launches of block_bench.cuh: the block-wide product floor and the warp sampler harness.
#include <cuda_runtime.h>

#include "block_bench.cuh"

namespace agf {
namespace bb {

template <class WK, int NR>
static cudaError_t go(const MatvecParams& p, int threads, size_t smem, cudaStream_t stream) {
    cudaError_t e = cudaFuncSetAttribute(reinterpret_cast<const void*>(matvec_bench_kernel<WK, NR>),
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    matvec_bench_kernel<WK, NR><<<1, threads, smem, stream>>>(p);
    return cudaGetLastError();
}

cudaError_t launch_matvec(const MatvecParams& p, int wtype, int threads, cudaStream_t stream) {
    const size_t smem = matvec_smem(p, wtype == 0 ? 4 : 2);
    if (p.NR == 2)
        return wtype == 0 ? go<F32, 2>(p, threads, smem, stream)
             : wtype == 1 ? go<F16, 2>(p, threads, smem, stream) : go<BF16, 2>(p, threads, smem, stream);
    return wtype == 0 ? go<F32, 1>(p, threads, smem, stream)
         : wtype == 1 ? go<F16, 1>(p, threads, smem, stream) : go<BF16, 1>(p, threads, smem, stream);
}

cudaError_t launch_sampler(const SamplerParams& p, int rows, cudaStream_t stream) {
    if (rows <= 0) return cudaSuccess;
    warp_sampler_kernel<<<rows, 32, 0, stream>>>(p);
    return cudaGetLastError();
}

}  // namespace bb
}  // namespace agf
