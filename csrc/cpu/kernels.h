// Dispatched CPU primitives shared by the model loops. Two implementations: portable C++
// (kernels_portable.cpp, whatever the compiler vectorises for the baseline ISA) and AVX2+FMA
// (kernels_avx2.cpp, compiled with -mavx2 -mfma); kernels() picks one at run time from the
// CPU's features (never -march=native at build time).
#pragma once
#include <cstdint>

#include "cpu/sparse.h"

namespace agf {

struct Kernels {
    const char* name;
    // y[i] += sum_k x[k] * W[k * ld + c0 + i]  for i in [0, c1 - c0)   (W input-major, "axpy" form)
    void (*axpy_cols)(const float* x, int n_in, const float* W, int ld, int c0, int c1, float* y);
    // the same with IEEE half-precision weights (bits in uint16_t), fp32 arithmetic
    void (*axpy_cols_h)(const float* x, int n_in, const uint16_t* W, int ld, int c0, int c1, float* y);
    // Y[b, i] += sum_k X[b, k] * W[k * ld + c0 + i] for b < B (row strides ldx, ldy): the weight
    // row segment is loaded once per k and reused for every stream (fold / batched generation)
    void (*gemm_cols)(const float* X, int B, int ldx, int n_in, const float* W, int ld, int c0, int c1, float* Y,
                      int ldy);
    // Y[r, i] += sum_k X[r, k] * W[k, i] for r < rows, i < N, with W packed by pack_panels()
    // (pack.h): 16-column panels, each [K, 16] contiguous. A strided [K, N] weight with N a
    // multiple of 128 floats maps every row of a 16-column strip to the same few L1 sets (512 B
    // stride, 8-way 32 KB L1): the strip thrashes L1; a contiguous panel streams.
    void (*gemm_packed)(const float* X, int rows, int ldx, int K, const float* Wp, int N, float* Y, int ldy);
    // Y = bias + X W (bias [N], the same for every row; null: zeros): Y is written, never read
    void (*gemm_packed_set)(const float* X, int rows, int ldx, int K, const float* Wp, int N, const float* bias,
                            float* Y, int ldy);
    // Y[b, 0:N] += X[b, :] @ W for b < B, W in 64-column panels (pack.h to_panels64): B == 1
    // runs 8-accumulator matrix-vector blocks, B > 1 the 6x16 tiles, both streaming each panel
    void (*gemm_panels)(const float* X, int B, int ldx, int K, const float* Wp, int N, float* Y, int ldy);
    // the same with IEEE half-precision weights, fp32 arithmetic
    void (*gemm_panels_h)(const float* X, int B, int ldx, int K, const uint16_t* Wp, int N, float* Y, int ldy);
    // Y[b, 0:N] += X[b, :] @ W for b < B, W block-sparse (sparse.h: S's blocks, their weights w);
    // the same bits as gemm_panels on the dense W
    void (*gemm_sparse)(const float* X, int B, int ldx, const SparseBlocks& S, const float* w, float* Y, int ldy);
    // the same with IEEE half-precision weights (the same bits as gemm_panels_h)
    void (*gemm_sparse_h)(const float* X, int B, int ldx, const SparseBlocks& S, const uint16_t* w, float* Y, int ldy);
    // z[i] = tanh(a[i]) * sigmoid(b[i])
    void (*gate_tanh_sigmoid)(const float* a, const float* b, float* z, int n);
    // z[i] = sigmoid(a[i]) * tanh(b[i])
    void (*gate_sigmoid_tanh)(const float* a, const float* b, float* z, int n);
    // GRU update for n units: r = s(gi_r + gh_r), u = s(gi_u + gh_u), c = tanh(gi_c + r * gh_c),
    // h = c + u * (h - c); gi / gh hold [r | u | c] blocks of n
    void (*gru_update)(const float* gi, const float* gh, float* h, int n);
    // e[k] = exp(x[k] - m) in fp32 for k < n; returns their fp32 sum (the softmax sampler's
    // fast path: sampling.h sample_softmax_fast)
    float (*exp_sum)(const float* x, int n, float m, float* e);
};

// IEEE half <-> float (round to nearest even), portable.
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);

const Kernels& portable_kernels();
const Kernels& avx2_kernels();  // the portable kernels where avx2_compiled() is false
bool avx2_compiled();           // this build has the AVX2 kernels (x86-64; kernels_avx2.cpp)
// The best available on this CPU; AGF_CPU_KERNELS=portable forces the portable path.
const Kernels& kernels();

}  // namespace agf
