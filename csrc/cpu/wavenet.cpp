#include "cpu/wavenet.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "cpu/kernels.h"
#include "cpu/sampling.h"
#include "cpu/team.h"

namespace agf {

int default_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

WaveNetCPU::WaveNetCPU(const WaveNetDims& d, const float* emb, const float* emb_b, const float* wd, const float* wos,
                       const float* bos, const float* w1, const float* b1, const float* w2, const float* b2)
    : d_(d) {
    if (d.L < 1 || (d.K != 2 && d.K != 3) || d.R < 1 || d.G < 2 || d.G % 2 || d.S < 1 || d.H < 1 || d.OUT < 1 ||
        d.IN < 1 || d.cycle < 1 || d.mode < 0 || d.mode > 2)
        throw std::invalid_argument("WaveNetCPU: invalid dimensions");
    if (d.mode == 1 && (d.n_mix < 1 || d.OUT != 3 * d.n_mix)) throw std::invalid_argument("WaveNetCPU: OUT != 3 * n_mix");
    if (d.mode == 2 && d.OUT != 2) throw std::invalid_argument("WaveNetCPU: Gaussian output needs OUT == 2");
    const int G2 = d.G / 2, RS = d.R + d.S;
    hist_rows_ = 0;
    for (int l = 0; l < d.L; ++l) {
        dil_.push_back(1 << (l % d.cycle));
        off_.push_back(hist_rows_);
        hist_rows_ += (d.K - 1) * dil_.back();
    }
    emb_.assign(emb, emb + static_cast<size_t>(d.IN) * d.R);
    emb_b_.assign(emb_b, emb_b + d.R);
    wd_.assign(wd, wd + static_cast<size_t>(d.L) * d.K * d.R * d.G);
    wos_.assign(wos, wos + static_cast<size_t>(d.L) * G2 * RS);
    bos_.assign(bos, bos + static_cast<size_t>(d.L) * RS);
    w1_.assign(w1, w1 + static_cast<size_t>(d.S) * d.H);
    b1_.assign(b1, b1 + d.H);
    w2_.assign(w2, w2 + static_cast<size_t>(d.H) * d.OUT);
    b2_.assign(b2, b2 + d.OUT);
}

void WaveNetCPU::run(int B, int Tc, int64_t t0, const float* cond, float* hist, float* x, const float* noise,
                     const float* teacher, float* out, float* logits, int nthreads) const {
    if (B < 1 || Tc < 0 || t0 < 0) throw std::invalid_argument("WaveNetCPU.run: bad sizes");
    if (Tc == 0) return;
    nthreads = std::max(1, nthreads);
    if (B == 1 || nthreads == 1) {
        // one stream at a time, its matrix-vector products split over the team
        for (int b = 0; b < B; ++b) run_stream_team(b, Tc, t0, cond, hist, x, noise, teacher, out, logits, nthreads);
        return;
    }
    // several streams: each thread runs whole streams
    const int nt = std::min(nthreads, B);
    run_team(nt, [&](int tid, int n) {
        for (int b = tid; b < B; b += n) run_stream_team(b, Tc, t0, cond, hist, x, noise, teacher, out, logits, 1);
    });
}

void WaveNetCPU::run_stream_team(int b, int Tc, int64_t t0, const float* cond_all, float* hist_all, float* x_all,
                                 const float* noise_all, const float* teacher_all, float* out_all, float* logits_all,
                                 int nthreads) const {
    const WaveNetDims& d = d_;
    const int L = d.L, K = d.K, R = d.R, G = d.G, G2 = G / 2, S = d.S, H = d.H, OUT = d.OUT, RS = R + S;
    const int NZ = d.mode == 1 ? 2 : 1;
    const float* cond = cond_all + static_cast<int64_t>(b) * Tc * L * G;
    float* hist = hist_all + static_cast<int64_t>(b) * hist_rows_ * R;
    const float* noise = noise_all ? noise_all + static_cast<int64_t>(b) * Tc * NZ : nullptr;
    const float* teacher = teacher_all ? teacher_all + static_cast<int64_t>(b) * Tc : nullptr;
    float* out = out_all + static_cast<int64_t>(b) * Tc;
    float* logits_out = logits_all ? logits_all + static_cast<int64_t>(b) * Tc * OUT : nullptr;
    const Kernels& kr = kernels();
    const float sqrt_half = std::sqrt(0.5f);
    const float skip_scale = std::sqrt(1.0f / L);

    // shared by the team
    std::vector<float> h(R), h_new(R), z(G2), skip(S), y(S), h1(H), lg(OUT);
    float xin = x_all[b];
    SpinBarrier bar(nthreads);

    run_team(nthreads, [&](int tid, int nt) {
        int j0, j1, c0, c1, hh0, hh1, o0, o1, r0, r1;
        split(G2, tid, nt, 8, &j0, &j1);     // gate channels
        split(RS, tid, nt, 8, &c0, &c1);     // residual | skip outputs
        split(H, tid, nt, 8, &hh0, &hh1);    // output hidden
        split(OUT, tid, nt, 8, &o0, &o1);    // logits
        split(R, tid, nt, 8, &r0, &r1);      // residual channels (embedding, ring writes)
        std::vector<float> acc_a(G2), acc_b(G2), acc_os(RS);
        for (int tt = 0; tt < Tc; ++tt) {
            const int64_t t = t0 + tt;
            const float xv = teacher ? teacher[tt] : xin;
            // input embedding (one-hot row for mu-law, scalar times a column otherwise)
            if (d.mode == 0) {
                const int k = std::min(std::max(static_cast<int>(xv), 0), d.IN - 1);
                for (int r = r0; r < r1; ++r) h[r] = emb_[static_cast<size_t>(k) * R + r] + emb_b_[r];
            } else {
                for (int r = r0; r < r1; ++r) h[r] = xv * emb_[r] + emb_b_[r];
            }
            if (tid == 0) std::fill(skip.begin(), skip.end(), 0.0f);
            bar.wait();
            for (int l = 0; l < L; ++l) {
                const int dl = dil_[l], M = (K - 1) * dl;
                float* ring = hist + static_cast<int64_t>(off_[l]) * R;
                const float* taps[3];
                taps[0] = ring + (t % M) * R;                                   // x[t - (K-1) d]
                if (K == 3) taps[1] = ring + ((t + dl) % M) * R;               // x[t - d]
                taps[K - 1] = h.data();                                         // x[t]
                const float* cl = cond + (static_cast<int64_t>(tt) * L + l) * G;
                const float* wl = wd_.data() + static_cast<int64_t>(l) * K * R * G;
                const int nj = j1 - j0;
                if (nj > 0) {
                    std::memcpy(acc_a.data(), cl + j0, nj * sizeof(float));
                    std::memcpy(acc_b.data(), cl + G2 + j0, nj * sizeof(float));
                    for (int k = 0; k < K; ++k) {
                        kr.axpy_cols(taps[k], R, wl + static_cast<int64_t>(k) * R * G, G, j0, j1, acc_a.data());
                        kr.axpy_cols(taps[k], R, wl + static_cast<int64_t>(k) * R * G, G, G2 + j0, G2 + j1, acc_b.data());
                    }
                    kr.gate_tanh_sigmoid(acc_a.data(), acc_b.data(), z.data() + j0, nj);
                }
                bar.wait();  // z complete; every thread has read its taps
                const int nc = c1 - c0;
                if (nc > 0) {
                    const float* bl = bos_.data() + static_cast<int64_t>(l) * RS;
                    std::memcpy(acc_os.data(), bl + c0, nc * sizeof(float));
                    kr.axpy_cols(z.data(), G2, wos_.data() + static_cast<int64_t>(l) * G2 * RS, RS, c0, c1, acc_os.data());
                    for (int c = c0; c < c1; ++c) {
                        if (c < R) {
                            ring[(t % M) * R + c] = h[c];              // the layer input enters its ring
                            h_new[c] = (h[c] + acc_os[c - c0]) * sqrt_half;
                        } else {
                            skip[c - R] += acc_os[c - c0];
                        }
                    }
                }
                bar.wait();
                for (int r = r0; r < r1; ++r) h[r] = h_new[r];
                bar.wait();
            }
            // output stack: relu(skip * scale) -> W1 -> relu -> W2
            for (int s = 0; s < S; ++s) y[s] = std::max(skip[s] * skip_scale, 0.0f);
            if (hh1 > hh0) {
                std::memcpy(h1.data() + hh0, b1_.data() + hh0, (hh1 - hh0) * sizeof(float));
                kr.axpy_cols(y.data(), S, w1_.data(), H, hh0, hh1, h1.data() + hh0);
                for (int i = hh0; i < hh1; ++i) h1[i] = std::max(h1[i], 0.0f);
            }
            bar.wait();
            if (o1 > o0) {
                std::memcpy(lg.data() + o0, b2_.data() + o0, (o1 - o0) * sizeof(float));
                kr.axpy_cols(h1.data(), H, w2_.data(), OUT, o0, o1, lg.data() + o0);
            }
            bar.wait();
            if (tid == 0) {
                if (logits_out) {
                    std::memcpy(logits_out + static_cast<int64_t>(tt) * OUT, lg.data(), OUT * sizeof(float));
                    out[tt] = xv;
                } else if (d.mode == 0) {
                    xin = static_cast<float>(sample_softmax(lg.data(), OUT, noise[tt]));
                    out[tt] = xin;
                } else if (d.mode == 1) {
                    xin = sample_mol(lg.data(), d.n_mix, noise[2 * tt], noise[2 * tt + 1], d.log_scale_min);
                    out[tt] = xin;
                } else {
                    xin = sample_gaussian(lg.data(), noise[tt], d.log_scale_min);
                    out[tt] = xin;
                }
            }
            bar.wait();
        }
    });
    x_all[b] = teacher ? teacher[Tc - 1] : xin;
}

}  // namespace agf
