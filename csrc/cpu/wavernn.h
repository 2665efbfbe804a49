// WaveRNN generation loop on the CPU: both GRUs, fc1/fc2/fc3 and sampling per step, for B
// streams at once (B > 1: fold generation or a batch, the weights then serve every stream).
// The mel | a1 projection of I (cI, which does not depend on the samples) is computed for blocks of
// 32 steps as small matrix products; everything else, the aux parts of GRU2's input gates and of
// fc1 / fc2 included, per step (run_streams; computing those, and GRU1's input gates on cI, per block
// too did not pay on the AVX2 Zen 3 it was tried on: benchmarks/NOTES_CPU.md, session 25).
// Shapes: B streams, Tc steps, R rnn units, F fc width, OUT classes (RAW) or 3 * n_mix (MOL).
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "cpu/int8.h"
#include "cpu/sparse.h"

namespace agf {

struct WaveRNNDims {
    int R, F, OUT;
    int C, A;  // mel channels, aux width (each of a1..a4)
    int mode;  // 0 RAW (softmax over OUT classes), 1 MOL (OUT = 3 n_mix), 2 GAUSS (OUT = 2: mean, log_std)
    int n_mix;
    float log_scale_min;
};

class WaveRNNCPU {
   public:
    // All input-major (transposed nn weights). w_ix [R]: I's weight of the previous sample;
    // w_ic [C + A, R], b_i [R]: I's mel|a1 part; wi1, wh1 [R, 3R], bi1, bh1 [3R]: GRU1;
    // wi2 [R, 3R] (x part), wi2a [A, 3R] (a2 part), bi2 [3R], wh2 [R, 3R], bh2 [3R]: GRU2;
    // wf1 [R, F], wf1a [A, F], bf1 [F]; wf2 [F, F], wf2a [A, F], bf2 [F]; wf3 [F, OUT], b3 [OUT].
    WaveRNNCPU(const WaveRNNDims& d, const float* w_ix, const float* w_ic, const float* b_i, const float* wi1,
               const float* wh1, const float* bi1, const float* bh1, const float* wi2, const float* wi2a,
               const float* bi2, const float* wh2, const float* bh2, const float* wf1, const float* wf1a,
               const float* bf1, const float* wf2, const float* wf2a, const float* bf2, const float* wf3,
               const float* b3);

    const WaveRNNDims& dims() const { return d_; }

    // mel [B, Tc, C] upsampled mel, aux [B, Tc, 4A] (a1 | a2 | a3 | a4); state h1, h2 [B, R], x [B]
    // (updated); noise [B, Tc(, 2)] or teacher [B, Tc] (then logits [B, Tc, OUT] are written);
    // out [B, Tc] sample values, cls [B, Tc] classes (RAW) or null.
    // wmode: the matrix weights of the GRUs and fc layers as 0 fp32; 1 fp16-stored copies (fp32
    // arithmetic; half the bytes the bandwidth-bound batch-1 step streams); 2 bf16 products
    // (cpu/bf16.h: bf16 weights and inputs, fp32 accumulation; on AVX512-BF16 the same bytes as
    // fp16 without the conversions); 3 int8 products (cpu/int8.h: int8 weights with a scale per
    // column, each input vector quantised to uint8 per product, int32 sums; a quarter of the fp32
    // bytes, vpdpbusd on AVX512-VNNI). The input projection I stays fp32 in every mode.
    // Block sparsity (modes 0 and 1): a weight slice whose 16 x 1 blocks (16 output columns of one
    // input) are at least 40% zero runs as a block-sparse product (sparse.h), the same bits; mode 3
    // likewise with 16 x 4 blocks (int8.h; where int8::sparse_fast()).
    // AGF_SPARSE=0 keeps every slice dense, AGF_SPARSE=force makes every slice sparse (tests).
    // schedule, for B >= 2 streams on 2+ threads (the same bits every way): 1 "team": all streams in
    // lockstep, every product split over the threads (a barrier per stage); 2 "split": each thread
    // runs its own share of the streams alone, in lockstep (no barriers); 0 auto: split_pays() (one
    // stream a thread and few weight bytes a step)
    void run(int B, int Tc, const float* mel, const float* aux, float* h1, float* h2, float* x, const float* noise,
             const float* teacher, float* out, int64_t* cls, float* logits, int nthreads, int wmode = 0,
             int schedule = 0) const;
    bool split_pays(int B, int nthreads, int wmode) const;
    // the bytes of GRU and fc weights a step streams, as stored for nt threads in mode wmode
    int64_t weight_bytes(int nt, int wmode) const;
    // split pays while a step streams at most this many bytes of weights (split_pays; measured in wavernn.cpp)
    static constexpr int64_t kSplitBytes = 3000000;

    // How run() with nthreads and wmode holds the GRU and fc weights: slices (matrix x thread, empty
    // ones not counted), of them block-sparse, and over the sparse ones the blocks kept (padding
    // included) of all (16 x 1 blocks; mode 3: 16 x 4).
    struct SparseInfo {
        int slices = 0, sparse = 0;
        int64_t kept = 0, total = 0;
    };
    SparseInfo sparse_info(int nthreads, int wmode) const;

   private:
    // one matrix slice in the form the weight mode uses (the others stay empty)
    struct Mat {
        std::vector<float> f;     // fp32, 64-column panels (pack.h): modes 0 and 1 (then dropped)
        std::vector<uint16_t> h;  // fp16 copy of those panels: mode 1
        std::vector<uint32_t> b;  // bf16 pair panels (bf16.h): mode 2
        int8::Weights q;          // int8 quad panels with column scales, or their sparse form (int8.h): mode 3
        // modes 0 / 1 where the slice is block-sparse enough (sparse.h; f / h then stay empty):
        SparseBlocks s;            // the nonzero 16 x 1 blocks (s.K == 0: dense)
        std::vector<float> sf;     // their fp32 weights (mode 0)
        std::vector<uint16_t> sh;  // their fp16 weights (mode 1)
        int n = 0;                 // the slice's columns (0: this thread has none of the matrix)
    };
    struct Pack {
        int j0, j1, f0, f1, o0, o1;
        Mat wi1, wh1, wi2, wi2a, wh2;  // [*, 3*nj] gate columns r|u|c of units j0..j1
        std::vector<float> bi1, bh1, bi2, bh2;  // [3*nj]
        Mat wf1, wf1a, wf2, wf2a, wf3;          // column slices f0..f1 (fc1, fc2) and o0..o1 (fc3)
        std::vector<float> bf1, bf2;
        // the GRU and fc weight slices, for the accounts that visit them all
        std::array<const Mat*, 10> mats() const {
            return {&wi1, &wh1, &wi2, &wi2a, &wh2, &wf1, &wf1a, &wf2, &wf2a, &wf3};
        }
    };
    static void to_mode(Mat& m, int K, int n, int wmode, double sparse_min);
    int team_size(int nthreads) const;  // the threads a team uses: nthreads, at most R / 8
    // run() for one team of nthreads (the streams in lockstep, the products split over the team)
    void run_streams(int B, int Tc, const float* mel, const float* aux, float* h1, float* h2, float* x,
                     const float* noise, const float* teacher, float* out, int64_t* cls, float* logits, int nthreads,
                     int wmode) const;
    const std::vector<Pack>& packs(int nthreads, int wmode) const;

    WaveRNNDims d_;
    std::vector<float> w_ix_, w_ic_, b_i_, wi1_, wh1_, bi1_, bh1_, wi2_, wi2a_, bi2_, wh2_, bh2_, wf1_, wf1a_, bf1_,
        wf2_, wf2a_, bf2_, wf3_, b3_;
    mutable std::mutex mu_;
    mutable std::map<int, std::vector<Pack>> packs_;
};

}  // namespace agf
