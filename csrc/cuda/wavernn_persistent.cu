// nvcc instantiation and launch of the WaveRNN persistent kernel (wavernn_persistent.cuh).
// Cooperative launch: the blocks of a chain wait on each other's flags, so all must be resident.
#include <cuda_runtime.h>

#include "launch_util.cuh"
#include "wavernn_persistent.cuh"

namespace agf {
namespace wrp {

// (both placements have the same register / occupancy needs; the resident count asks the
// shared-memory one)
cudaError_t max_resident_blocks(int wtype, int MT, int threads, size_t smem, int* out) {
    return resident_blocks(pick_kernel(wtype, MT, true), threads, smem, out);
}

cudaError_t launch(const Params& p, int wtype, int MT, int threads, size_t smem, cudaStream_t stream) {
    return cooperative_launch(pick_kernel(wtype, MT, p.wsmem != 0), p, static_cast<unsigned>(p.nchains * p.nblk), threads,
                              smem, stream);
}

}  // namespace wrp
}  // namespace agf
