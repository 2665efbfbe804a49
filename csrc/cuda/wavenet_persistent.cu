// nvcc instantiation and launch of the WaveNet persistent kernel (wavenet_persistent.cuh), global
// memory transport. Cooperative launch: the blocks of a chain spin on each other's flags, so they
// must all be resident at once; the driver refuses (cudaErrorCooperativeLaunchTooLarge) rather
// than hang. The cluster (distributed shared memory) transport: wavenet_persistent_cluster.cu.
#include <cuda_runtime.h>

#include "launch_util.cuh"
#include "wavenet_persistent.cuh"

namespace agf {
namespace wnp {

using KernelFn = void (*)(const Params);

static KernelFn pick(int wtype, int MT) {  // MT streams per chain: 1, 8, or 16 (tensor cores for 16-bit weights)
    if (MT == 1) return wtype == 0 ? wavenet_persistent_kernel<F32, 1, false>
                      : wtype == 1 ? wavenet_persistent_kernel<F16, 1, false> : wavenet_persistent_kernel<BF16, 1, false>;
    if (MT == 8) return wtype == 0 ? wavenet_persistent_kernel<F32, 8, false>
                      : wtype == 1 ? wavenet_persistent_kernel<F16, 8, false> : wavenet_persistent_kernel<BF16, 8, false>;
    return wtype == 0 ? wavenet_persistent_kernel<F32, 16, false>
         : wtype == 1 ? wavenet_persistent_kernel<F16, 16, false> : wavenet_persistent_kernel<BF16, 16, false>;
}

cudaError_t max_resident_blocks(int wtype, int MT, int threads, size_t smem, int* out) {
    return resident_blocks(pick(wtype, MT), threads, smem, out);
}

cudaError_t launch_cluster(const Params& p, int wtype, int MT, int threads, size_t smem, cudaStream_t stream);

cudaError_t launch(const Params& p, int wtype, int MT, int threads, size_t smem, cudaStream_t stream) {
    if (p.dsmem) return launch_cluster(p, wtype, MT, threads, smem, stream);
    return cooperative_launch(pick(wtype, MT), p, static_cast<unsigned>(p.nchains * (p.nblk + 1)), threads, smem, stream);
}

}  // namespace wnp
}  // namespace agf
