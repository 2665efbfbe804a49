// DiffWave denoise loop on the CPU: every step, every residual layer and the head in C++.
//
// Layout: activations are time-major, [B, T, C] (a time row of C channels is contiguous), so a
// block of Tb time rows of a layer is one matrix product:
//   Z [Tb, 2C] = [x(t-d)+e | x(t)+e | x(t+d)+e | mel(t)] [Tb, 3C (+M)] @ Wd [3C (+M), 2C] + bias
// (the dilated conv, the step bias e and the conditioner in one product; taps outside the
// signal are zero, as the reference's zero padding), then the gate in the block's epilogue,
// then O [Tb, 2C] = gate [Tb, C] @ Wo [C, 2C] + bo, residual and skip written straight away.
// The blocks of a layer are split between the threads; one barrier per layer (the next layer
// reads neighbours at +-dilation that another thread wrote).
//
// Conditioner hoisting: mel(t) @ Wc + bias does not depend on the step, so for as many layers as
// the caller allows (memory: 2C floats per sample and hoisted layer) it is computed once per
// utterance into a cache and those layers' per-step products shrink to the taps and the output
// (D1: 29% fewer multiply-adds per layer, the bundled default model C = 32, M = 80: 45%). The
// cache holds what the layer computes first anyway (bias + conditioner, by the same product), so
// the audio is the same bit for bit whatever the number of hoisted layers.
//
// bf16 products (run(..., bf16 = true), dtype "bfloat16"): the layers' products take their
// inputs rounded to bf16 (the Winograd-transformed taps, the mel rows, the gate) and bf16
// copies of the weights, accumulating in fp32 (cpu/bf16.h: vdpbf16ps where the CPU has it, 2x
// the fp32 FMA rate); everything between the products (transforms, gate, residual and skip
// sums, head, update) stays fp32.
#pragma once
#include <cstdint>
#include <vector>

namespace agf {

struct DiffWaveDims {
    int C;  // residual channels
    int L;  // residual layers
    int M;  // mel channels, 0 for an unconditional model
};

class DiffWaveCPU {
   public:
    // w_in, b_in [C] (input 1x1 conv); dil [L]; wd [L, 3C + M, 2C] (tap 0 | tap 1 | tap 2 |
    // conditioner rows, input-major); bd [L, 2C] (conv bias + conditioner bias); wo [L, C, 2C],
    // bo [L, 2C] (output 1x1: residual | skip columns); wsp [C, C], bsp [C] (skip projection);
    // wout [C], bout [1] (output projection).
    DiffWaveCPU(const DiffWaveDims& d, const int* dil, const float* w_in, const float* b_in, const float* wd,
                const float* bd, const float* wo, const float* bo, const float* wsp, const float* bsp,
                const float* wout, const float* bout);

    const DiffWaveDims& dims() const { return d_; }

    // S executed steps (i = 0 .. S-1). eproj [S, L, C]: each layer's step bias for step i;
    // c1, c2, sigma [S]: the update coefficients of step i (sigma 0 on the last step);
    // noise [S, B, T]: noise[0] is x_T, noise[i] the z added after step i-1; mel [B, T, M]
    // (the upsampled mel) or null; out [B, T]. hoist: the number of layers (from the first; 0 ..
    // L, clamped) whose conditioner projections are cached for the call (above);
    // winograd: the dilated conv by Winograd F(2,3) (a third fewer multiply-adds), else direct.
    // bf16: the layers' products in bf16 (above); needs winograd.
    void run(int B, int64_t T, int S, const float* eproj, const float* c1, const float* c2, const float* sigma,
             const float* noise, const float* mel, float* out, int nthreads, int hoist, bool winograd,
             bool bf16 = false) const;

   private:
    struct Scratch;  // one thread's block buffers (diffwave.cpp)
    void layer_winograd(int l, int d, int B, int64_t T, const float* e, const float* xin, float* xout, float* skip,
                        const float* cache, const float* mel, const uint32_t* melb, int tid, int nt, Scratch& s,
                        bool bf16) const;

    DiffWaveDims d_;
    std::vector<int> dil_;
    std::vector<float> w_in_, b_in_, bd_, bo_, bsp_, wout_;
    std::vector<float> wt_, wc_, wo_, wsp_, wg_;  // wg_: [L][4] Winograd filter panels [C x 2C]  // panel-packed (pack.h): [L][3C x 2C], [L][M x 2C], [L][C x 2C], [C x C]
    // bf16 copies (cpu/bf16.h panels of pairs): Winograd filters [L][4] [C x 2C], conditioner
    // [L] [M x 2C], output [L] [C x 2C]
    std::vector<uint32_t> wgb_, wcb_, wob_;
    float bout_;
};

}  // namespace agf
