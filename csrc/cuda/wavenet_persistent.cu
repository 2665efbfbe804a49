// nvcc instantiation and launch of the WaveNet persistent kernel (wavenet_persistent.cuh), global
// memory transport. Cooperative launch: the blocks of a chain spin on each other's flags, so they
// must all be resident at once; the driver refuses (cudaErrorCooperativeLaunchTooLarge) rather
// than hang. The cluster (distributed shared memory) transport: wavenet_persistent_cluster.cu.
#include <cuda_runtime.h>

#include "launch_util.cuh"
#include "wavenet_persistent.cuh"

namespace agf {
namespace wnp {

static KernelFn pick(int wtype, int MT, int SH) { return pick_kernel<false>(wtype, MT, SH); }

// the fewest of the shape variants' counts (the caller does not know which one it will launch)
cudaError_t max_resident_blocks(int wtype, int MT, int threads, size_t smem, int* out) {
    cudaError_t e = resident_blocks(pick(wtype, MT, 0), threads, smem, out);
    for (int sh = 1; sh <= 2 && e == cudaSuccess && MT == 1; ++sh) {
        int n = 0;
        e = resident_blocks(pick(wtype, MT, sh), threads, smem, &n);
        if (n < *out) *out = n;
    }
    return e;
}

cudaError_t launch_cluster(const Params& p, int wtype, int MT, int threads, size_t smem, cudaStream_t stream);

cudaError_t launch(const Params& p, int wtype, int MT, int threads, size_t smem, cudaStream_t stream) {
    if (p.dsmem) return launch_cluster(p, wtype, MT, threads, smem, stream);
    return cooperative_launch(pick(wtype, MT, shape_variant(p, threads)), p, static_cast<unsigned>(p.nchains * (p.nblk + 1)),
                              threads, smem, stream);
}

}  // namespace wnp
}  // namespace agf
