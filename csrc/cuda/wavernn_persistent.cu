// nvcc instantiation and launch of the WaveRNN persistent kernel (wavernn_persistent.cuh).
// Cooperative launch: the blocks of a chain wait on each other's flags, so all must be resident.
#include <cuda_runtime.h>

#include "launch_util.cuh"
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
    return resident_blocks(pick(wtype, MT), threads, smem, out);
}

cudaError_t launch(const Params& p, int wtype, int MT, int threads, size_t smem, cudaStream_t stream) {
    return cooperative_launch(pick(wtype, MT), p, static_cast<unsigned>(p.nchains * p.nblk), threads, smem, stream);
}

}  // namespace wrp
}  // namespace agf
