// WaveNet generation loop on the CPU: every layer's ring-buffer step, the output stack, the
// sampler and the input embedding, for a chunk of time steps, with no Python per sample.
// Shapes: B streams, Tc steps, L layers, K taps, R residual, G gate (G2 = G / 2), S skip,
// H output hidden, OUT outputs, IN input width (classes for mu-law, 1 otherwise).
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "cpu/int8.h"

namespace agf {

struct WaveNetDims {
    int L, K, R, G, S, H, OUT, IN, cycle;
    int mode;             // 0 mu-law softmax, 1 mixture of logistics, 2 Gaussian
    int n_mix;
    float log_scale_min;
};

// Per-layer conditioning of a chunk in frame-rate form. A WaveNet's upsampler (stretch + time
// smoothing, shared by every mel channel) is linear in time and the conditioning 1x1 is linear in
// channels, so the two commute: project the mel frames first (P, 256x fewer multiply-adds than
// projecting upsampled samples), then each sample's conditioning is a short weighted sum of
// projected frames. Sample t of stream b gets, for every layer's G gate inputs,
//   bias[b] + sum_{i < NB} wts[b, t, i] * P[b, f0[b, t] + i]          (vectors of L*G)
// P [B, F, L*G], bias [B, L*G], f0 [B, Tc] (f0 + NB <= F), wts [B, Tc, NB]. A per-sample
// conditioning tensor [B, Tc, L*G] is the case F = Tc, f0[t] = t, NB = 1, wts = 1, bias = 0.
struct CondFrames {
    const float* P;
    int F;
    const float* bias;
    const int32_t* f0;
    const float* wts;
    int NB;
};

class WaveNetCPU {
   public:
    // Weights (fp32, copied): emb [IN, R], emb_b [R], wd [L, K*R, G] (tap-major rows, oldest tap
    // first), wos [L, G2, R+S], bos [L, R+S], w1 [S, H], b1 [H], w2 [H, OUT], b2 [OUT].
    WaveNetCPU(const WaveNetDims& d, const float* emb, const float* emb_b, const float* wd, const float* wos,
               const float* bos, const float* w1, const float* b1, const float* w2, const float* b2);

    int hist_rows() const { return hist_rows_; }
    const WaveNetDims& dims() const { return d_; }

    // hist [B, hist_rows, R] and x [B] (state, updated), noise [B, Tc, NZ] or teacher [B, Tc]
    // (then logits [B, Tc, OUT] are written), out [B, Tc]; the conditioning as CondFrames.
    // wmode: the big weight matrices (wd, wos, w1, w2) 0 fp32; 1 streamed as fp16 (F16C),
    // arithmetic fp32; 2 bf16 products (cpu/bf16.h: bf16 weights and inputs, fp32 accumulation);
    // 3 int8 products (cpu/int8.h: int8 weights with a scale per column, each input row quantised
    // to uint8, int32 sums).
    // schedule, for B >= 2 streams (the same bits either way): 1 "team": all of them in lockstep
    // on the team, every product split over the threads (each weight row read once per step for
    // all streams); 2 "split": each thread advances its own share of the streams in lockstep,
    // doing every part of the work itself (no barriers); 0 auto: split_pays().
    void run(int B, int Tc, int64_t t0, const CondFrames& cond, float* hist, float* x, const float* noise,
             const float* teacher, float* out, float* logits, int nthreads, int wmode = 0, int schedule = 0) const;

   private:
    // One thread's share of every matrix-vector product, its columns packed contiguously so
    // that each thread streams its own weights (nothing strided, nothing shared).
    struct Pack {
        int j0, j1, h0, h1, r0, r1;
        // All of the thread's weights in one array of 64-column panels (pack.h), in reading
        // order: per layer wd [K*R, 2*nj] (gate columns j0..j1 then G2+j0..G2+j1), then rows
        // j0..j1 of wos as its residual [nj, R] and skip [nj, S] parts; then w1 [S, nh] (columns
        // h0..h1), w2 [nh, OUT] (rows h0..h1).
        // fp32 in w or fp16 in w_h; or (wmode 2) the same matrices as bf16 pair panels in w_b
        // (16 columns, bf16.h), offsets in words: lw_b per layer, wd_b, wr_b within it, w1_b, w2_b;
        // or (wmode 3) as int8 panels in q: per layer wd, wr, ws at 3 l, 3 l + 1, 3 l + 2, then
        // w1, w2 at 3 L, 3 L + 1.
        size_t layer_floats, wd_floats, wr_floats, w1_off, w2_off;
        size_t lw_b, wd_b, wr_b, w1_b, w2_b;
        std::vector<float> w;
        std::vector<uint16_t> w_h;
        std::vector<uint32_t> w_b;
        std::vector<int8::Weights> q;
    };
    const std::vector<Pack>& packs(int nthreads, int wmode) const;

    // streams b0 .. b0 + nb - 1 in lockstep, the work cut into nparts parts, on a team of
    // nthreads (nthreads <= nparts) threads
    void run_group(int b0, int nb, int Tc, int64_t t0, const CondFrames& cond, float* hist, float* x, const float* noise,
                   const float* teacher, float* out, float* logits, int nthreads, int nparts, int wmode) const;
    static constexpr int kGroup = 64;
    bool split_pays(int wmode) const;

    WaveNetDims d_;
    int hist_rows_;
    std::vector<int> dil_, off_;
    std::vector<float> emb_, emb_b_, wd_, wos_, bos_, skip_bias_, w1_, b1_, w2_, b2_;
    mutable std::mutex mu_;
    mutable std::map<int, std::vector<Pack>> packs_;
};

}  // namespace agf
