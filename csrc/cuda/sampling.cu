// CUDA twin of csrc/cpu/sampling.h for the GPU backends: the inverse-CDF softmax sampler and the
// mu-law decoder, one thread per row (rows are streams: a handful per step), computed in double
// exactly as the CPU reference so that both pick the same class for the same logits and uniform.
#include <cuda_runtime.h>

#include <cstdint>

namespace agf {

__global__ void sample_softmax_kernel(const float* __restrict__ logits, const float* __restrict__ u,
                                      int64_t* __restrict__ out, int n, int classes) {
    const int row = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= n) return;
    const float* l = logits + static_cast<int64_t>(row) * classes;
    float m = l[0];
    for (int k = 1; k < classes; ++k) m = fmaxf(m, l[k]);
    double s = 0.0;
    for (int k = 0; k < classes; ++k) s += exp(static_cast<double>(l[k]) - m);
    const double target = static_cast<double>(u[row]) * s;
    double c = 0.0;
    int pick = classes - 1;
    for (int k = 0; k < classes; ++k) {
        c += exp(static_cast<double>(l[k]) - m);
        if (c > target) {
            pick = k;
            break;
        }
    }
    out[row] = pick;
}

__global__ void mulaw_decode_kernel(const int64_t* __restrict__ k, float* __restrict__ out, int64_t n, int mu) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const double y = 2.0 * static_cast<double>(k[i]) / mu - 1.0;
    out[i] = static_cast<float>(copysign((pow(1.0 + mu, fabs(y)) - 1.0) / mu, y));
}

cudaError_t launch_sample_softmax(const float* logits, const float* u, int64_t* out, int n, int classes,
                                  cudaStream_t stream) {
    if (n <= 0) return cudaSuccess;
    const int threads = 128;
    sample_softmax_kernel<<<(n + threads - 1) / threads, threads, 0, stream>>>(logits, u, out, n, classes);
    return cudaGetLastError();
}

cudaError_t launch_mulaw_decode(const int64_t* k, float* out, int64_t n, int mu, cudaStream_t stream) {
    if (n <= 0) return cudaSuccess;
    const int threads = 256;
    mulaw_decode_kernel<<<static_cast<unsigned>((n + threads - 1) / threads), threads, 0, stream>>>(k, out, n, mu);
    return cudaGetLastError();
}

}  // namespace agf
