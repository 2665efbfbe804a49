#include "cpu/diffwave.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "cpu/kernels.h"
#include "cpu/pack.h"
#include "cpu/team.h"

namespace agf {

namespace {
// Time rows per block: a multiple of the GEMM's 6-row register tile; the block's scratch
// (A [96, 3C], Z and O [96, 2C], gate [96, C]: ~170 KB for C=64) and one layer's weights
// (~170 KB) stay in a 512 KB L2.
constexpr int kBlock = 96;
}  // namespace

DiffWaveCPU::DiffWaveCPU(const DiffWaveDims& d, const int* dil, const float* w_in, const float* b_in,
                         const float* wd, const float* bd, const float* wo, const float* bo, const float* wsp,
                         const float* bsp, const float* wout, const float* bout)
    : d_(d) {
    if (d.C < 1 || d.L < 1 || d.M < 0) throw std::invalid_argument("DiffWaveCPU: invalid dimensions");
    const size_t C = d.C, L = d.L, K = 3 * C + d.M;
    dil_.assign(dil, dil + L);
    for (int v : dil_)
        if (v < 1) throw std::invalid_argument("DiffWaveCPU: dilations must be >= 1");
    auto cp = [](std::vector<float>& v, const float* p, size_t n) { v.assign(p, p + n); };
    cp(w_in_, w_in, C); cp(b_in_, b_in, C);
    cp(bd_, bd, L * 2 * C); cp(bo_, bo, L * 2 * C); cp(bsp_, bsp, C); cp(wout_, wout, C);
    // weights in 16-column panels (Kernels::gemm_packed): taps, conditioner, output, skip proj
    const size_t pt = panel_floats(3 * d.C, 2 * d.C), pc = panel_floats(d.M, 2 * d.C), po = panel_floats(d.C, 2 * d.C);
    wt_.resize(L * pt); wc_.resize(L * pc); wo_.resize(L * po); wsp_.resize(panel_floats(d.C, d.C));
    for (size_t l = 0; l < L; ++l) {
        const float* w = wd + l * K * 2 * C;
        pack_panels(w, 3 * d.C, 2 * d.C, 0, 2 * d.C, wt_.data() + l * pt);
        if (d.M) pack_panels(w + 3 * C * 2 * C, d.M, 2 * d.C, 0, 2 * d.C, wc_.data() + l * pc);
        pack_panels(wo + l * C * 2 * C, d.C, 2 * d.C, 0, 2 * d.C, wo_.data() + l * po);
    }
    pack_panels(wsp, d.C, d.C, 0, d.C, wsp_.data());
    bout_ = *bout;
}

void DiffWaveCPU::run(int B, int64_t T, int S, const float* eproj, const float* c1, const float* c2,
                      const float* sigma, const float* noise, const float* mel, float* out, int nthreads,
                      bool hoist) const {
    if (B < 1 || T < 0 || S < 1) throw std::invalid_argument("DiffWaveCPU.run: bad sizes");
    if (d_.M > 0 && mel == nullptr) throw std::invalid_argument("DiffWaveCPU.run: this model needs a mel");
    if (T == 0) return;
    const int C = d_.C, L = d_.L, M = d_.M, C2 = 2 * C, K = 3 * C;
    hoist = hoist && M > 0;
    const size_t pt = panel_floats(K, C2), pc = panel_floats(M, C2), po = panel_floats(C, C2);
    const int64_t nblk_t = (T + kBlock - 1) / kBlock, nblk = nblk_t * B;
    const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nthreads, nblk)));
    const Kernels& kr = kernels();
    const size_t BTC = static_cast<size_t>(B) * T * C;
    std::vector<float> xa(BTC), xb(BTC), skip(BTC);  // [B, T, C]: layer input / output, skip sum
    std::vector<float> cache(hoist ? static_cast<size_t>(L) * B * T * C2 : 0);  // [L, B, T, 2C]
    std::vector<float> audio(noise, noise + static_cast<size_t>(B) * T);        // x_T
    const float rsqrt2 = static_cast<float>(std::sqrt(2.0)), rsqrtL = static_cast<float>(std::sqrt(double(L)));
    SpinBarrier bar(nt);

    run_team(nt, [&](int tid, int) {
        const int64_t blk0 = nblk * tid / nt, blk1 = nblk * (tid + 1) / nt;
        std::vector<float> A(static_cast<size_t>(kBlock) * K), Z(static_cast<size_t>(kBlock) * C2),
            G(static_cast<size_t>(kBlock) * C), O(static_cast<size_t>(kBlock) * C2), H(static_cast<size_t>(kBlock) * C);
        auto rows = [&](int64_t blk, int* b, int64_t* t0, int* n) {
            *b = static_cast<int>(blk / nblk_t);
            *t0 = (blk % nblk_t) * kBlock;
            *n = static_cast<int>(std::min<int64_t>(kBlock, T - *t0));
        };
        if (hoist) {  // conditioner projections of every layer, once per utterance
            for (int l = 0; l < L; ++l) {
                const float* wc = wc_.data() + l * pc;
                for (int64_t blk = blk0; blk < blk1; ++blk) {
                    int b, n; int64_t t0;
                    rows(blk, &b, &t0, &n);
                    float* zc = cache.data() + ((static_cast<size_t>(l) * B + b) * T + t0) * C2;
                    for (int r = 0; r < n; ++r) std::memcpy(zc + static_cast<size_t>(r) * C2, bd_.data() + static_cast<size_t>(l) * C2, C2 * sizeof(float));
                    kr.gemm_packed(mel + (static_cast<size_t>(b) * T + t0) * M, n, M, M, wc, C2, zc, C2);
                }
            }
        }
        for (int i = 0; i < S; ++i) {
            // input projection: x[b, t, :] = relu(w_in * audio[b, t] + b_in)
            for (int64_t blk = blk0; blk < blk1; ++blk) {
                int b, n; int64_t t0;
                rows(blk, &b, &t0, &n);
                for (int r = 0; r < n; ++r) {
                    const float a = audio[static_cast<size_t>(b) * T + t0 + r];
                    float* xr = xa.data() + (static_cast<size_t>(b) * T + t0 + r) * C;
                    for (int c = 0; c < C; ++c) xr[c] = std::max(0.0f, w_in_[c] * a + b_in_[c]);
                }
            }
            bar.wait();
            float* xin = xa.data();
            float* xout = xb.data();
            for (int l = 0; l < L; ++l) {
                const int d = dil_[l];
                const float* e = eproj + (static_cast<size_t>(i) * L + l) * C;
                const float* wtl = wt_.data() + l * pt;
                const float* wcl = wc_.data() + l * pc;
                const float* wol = wo_.data() + l * po;
                const float* bol = bo_.data() + static_cast<size_t>(l) * C2;
                for (int64_t blk = blk0; blk < blk1; ++blk) {
                    int b, n; int64_t t0;
                    rows(blk, &b, &t0, &n);
                    const float* xbase = xin + static_cast<size_t>(b) * T * C;
                    // A rows: the three taps of y = x + e (zero outside the signal)
                    for (int r = 0; r < n; ++r) {
                        const int64_t t = t0 + r;
                        float* ar = A.data() + static_cast<size_t>(r) * K;
                        for (int j = 0; j < 3; ++j) {
                            const int64_t tt = t + (j - 1) * static_cast<int64_t>(d);
                            float* aj = ar + j * C;
                            if (tt < 0 || tt >= T) {
                                std::memset(aj, 0, C * sizeof(float));
                            } else {
                                const float* xr = xbase + tt * C;
                                for (int c = 0; c < C; ++c) aj[c] = xr[c] + e[c];
                            }
                        }
                        float* zr = Z.data() + static_cast<size_t>(r) * C2;
                        if (hoist)
                            std::memcpy(zr, cache.data() + ((static_cast<size_t>(l) * B + b) * T + t) * C2, C2 * sizeof(float));
                        else
                            std::memcpy(zr, bd_.data() + static_cast<size_t>(l) * C2, C2 * sizeof(float));
                        std::memcpy(O.data() + static_cast<size_t>(r) * C2, bol, C2 * sizeof(float));
                    }
                    kr.gemm_packed(A.data(), n, K, K, wtl, C2, Z.data(), C2);
                    if (!hoist && M > 0)  // the conditioner straight from the mel rows
                        kr.gemm_packed(mel + (static_cast<size_t>(b) * T + t0) * M, n, M, M, wcl, C2, Z.data(), C2);
                    for (int r = 0; r < n; ++r) {  // gate: sigmoid(first C) * tanh(last C)
                        const float* zr = Z.data() + static_cast<size_t>(r) * C2;
                        kr.gate_sigmoid_tanh(zr, zr + C, G.data() + static_cast<size_t>(r) * C, C);
                    }
                    kr.gemm_packed(G.data(), n, C, C, wol, C2, O.data(), C2);
                    for (int r = 0; r < n; ++r) {  // residual and skip
                        const size_t row = (static_cast<size_t>(b) * T + t0 + r) * C;
                        const float* orow = O.data() + static_cast<size_t>(r) * C2;
                        const float* xr = xin + row;
                        float* yr = xout + row;
                        float* sr = skip.data() + row;
                        for (int c = 0; c < C; ++c) yr[c] = (xr[c] + orow[c]) / rsqrt2;
                        if (l == 0)
                            std::memcpy(sr, orow + C, C * sizeof(float));
                        else
                            for (int c = 0; c < C; ++c) sr[c] = orow[C + c] + sr[c];
                    }
                }
                bar.wait();
                std::swap(xin, xout);
            }
            // head: eps = wout . relu(Wsp (skip / sqrt(L)) + bsp) + bout, then the update
            const int n_left = S - 1 - i;  // lmnt's step index n of this executed step
            for (int64_t blk = blk0; blk < blk1; ++blk) {
                int b, n; int64_t t0;
                rows(blk, &b, &t0, &n);
                for (int r = 0; r < n; ++r) {
                    const float* sr = skip.data() + (static_cast<size_t>(b) * T + t0 + r) * C;
                    float* gr = G.data() + static_cast<size_t>(r) * C;
                    for (int c = 0; c < C; ++c) gr[c] = sr[c] / rsqrtL;
                    std::memcpy(H.data() + static_cast<size_t>(r) * C, bsp_.data(), C * sizeof(float));
                }
                kr.gemm_packed(G.data(), n, C, C, wsp_.data(), C, H.data(), C);
                for (int r = 0; r < n; ++r) {
                    const float* hr = H.data() + static_cast<size_t>(r) * C;
                    float eps = 0.0f;
                    for (int c = 0; c < C; ++c) eps += std::max(0.0f, hr[c]) * wout_[c];
                    eps += bout_;
                    const size_t idx = static_cast<size_t>(b) * T + t0 + r;
                    float x = audio[idx];
                    const float t2 = c2[i] * eps;  // the reference's order: c1 * (x - c2 * eps) + sigma * z
                    x = c1[i] * (x - t2);
                    if (n_left > 0) {
                        const float z = sigma[i] * noise[static_cast<size_t>(i + 1) * B * T + idx];
                        x = x + z;
                    }
                    audio[idx] = std::min(1.0f, std::max(-1.0f, x));
                }
            }
            // the next step's input projection reads only this thread's own rows: no barrier
        }
    });
    std::memcpy(out, audio.data(), sizeof(float) * B * T);
}

}  // namespace agf
