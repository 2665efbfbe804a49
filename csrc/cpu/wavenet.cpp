#include "cpu/wavenet.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "cpu/kernels.h"
#include "cpu/pack.h"
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
    skip_bias_.assign(d.S, 0.0f);  // the skip outputs' biases summed over layers (added once per sample)
    for (int l = 0; l < d.L; ++l)
        for (int s = 0; s < d.S; ++s) skip_bias_[s] += bos_[static_cast<size_t>(l) * RS + d.R + s];
    w1_.assign(w1, w1 + static_cast<size_t>(d.S) * d.H);
    b1_.assign(b1, b1 + d.H);
    w2_.assign(w2, w2 + static_cast<size_t>(d.H) * d.OUT);
    b2_.assign(b2, b2 + d.OUT);
}

void WaveNetCPU::run(int B, int Tc, int64_t t0, const CondFrames& cond, float* hist, float* x, const float* noise,
                     const float* teacher, float* out, float* logits, int nthreads, bool half) const {
    if (B < 1 || Tc < 0 || t0 < 0) throw std::invalid_argument("WaveNetCPU.run: bad sizes");
    if (Tc == 0) return;
    nthreads = std::max(1, nthreads);
    if (B == 1 || nthreads == 1) {
        // one stream at a time, its matrix-vector products split over the team
        for (int b = 0; b < B; ++b) run_stream_team(b, Tc, t0, cond, hist, x, noise, teacher, out, logits, nthreads, half);
        return;
    }
    // several streams: each thread runs whole streams
    const int nt = std::min(nthreads, B);
    run_team(nt, [&](int tid, int n) {
        for (int b = tid; b < B; b += n) run_stream_team(b, Tc, t0, cond, hist, x, noise, teacher, out, logits, 1, half);
    });
}

namespace {

}  // namespace

void to_half(std::vector<float>& src, std::vector<uint16_t>& dst) {
    dst.resize(src.size());
    for (size_t i = 0; i < src.size(); ++i) dst[i] = float_to_half(src[i]);
    std::vector<float>().swap(src);
}

// y[0:n] += x[0:n_in] @ W, W the 64-column panels at offset off, in whichever precision the pack holds
inline void matvec(const Kernels& kr, const float* x, int n_in, const std::vector<float>& wf,
                   const std::vector<uint16_t>& wh, size_t off, int n, float* y) {
    if (!wh.empty()) kr.gemm_panels_h(x, 1, n_in, n_in, wh.data() + off, n, y, n);
    else kr.gemm_panels(x, 1, n_in, n_in, wf.data() + off, n, y, n);
}

const std::vector<WaveNetCPU::Pack>& WaveNetCPU::packs(int nt, bool half) const {
    std::lock_guard<std::mutex> lock(mu_);
    const int key = 2 * nt + (half ? 1 : 0);
    auto it = packs_.find(key);
    if (it != packs_.end()) return it->second;
    const WaveNetDims& d = d_;
    const int L = d.L, K = d.K, R = d.R, G = d.G, G2 = G / 2, S = d.S, H = d.H, OUT = d.OUT, RS = R + S;
    std::vector<Pack> ps(nt);
    for (int tid = 0; tid < nt; ++tid) {
        Pack& p = ps[tid];
        split(G2, tid, nt, 8, &p.j0, &p.j1);
        split(RS, tid, nt, 8, &p.c0, &p.c1);
        split(H, tid, nt, 8, &p.h0, &p.h1);
        split(R, tid, nt, 8, &p.r0, &p.r1);
        const int nj = p.j1 - p.j0;
        // every matrix in 64-column panels (pack.h), in the order the loop reads them (per layer
        // wd then wos, then w1, w2): one thread's weights for a whole sample are one sequential
        // stream, which the hardware prefetcher follows across matrix and layer boundaries
        const size_t wd_n = panel_floats(K * R, 2 * nj, 64), wr_n = panel_floats(nj, R, 64);
        p.layer_floats = wd_n + wr_n + panel_floats(nj, S, 64);
        p.wd_floats = wd_n;
        p.wr_floats = wr_n;
        p.w1_off = static_cast<size_t>(L) * p.layer_floats;
        p.w2_off = p.w1_off + panel_floats(S, p.h1 - p.h0, 64);
        std::vector<float> w(p.w2_off + panel_floats(p.h1 - p.h0, OUT, 64), 0.0f);
        std::vector<float> tmp(static_cast<size_t>(K) * R * 2 * nj);
        for (int l = 0; l < L && nj > 0; ++l) {
            const float* wl = wd_.data() + static_cast<int64_t>(l) * K * R * G;
            for (int row = 0; row < K * R; ++row) {
                float* dst = tmp.data() + static_cast<int64_t>(row) * 2 * nj;
                std::memcpy(dst, wl + static_cast<int64_t>(row) * G + p.j0, nj * sizeof(float));
                std::memcpy(dst + nj, wl + static_cast<int64_t>(row) * G + G2 + p.j0, nj * sizeof(float));
            }
            float* lw = w.data() + l * p.layer_floats;
            pack_panels(tmp.data(), K * R, 2 * nj, 0, 2 * nj, lw, 64);
            // wos rows j0..j1 split into the residual columns and the skip columns
            const float* wos_l = wos_.data() + (static_cast<int64_t>(l) * G2 + p.j0) * RS;
            pack_panels(wos_l, nj, RS, 0, R, lw + wd_n, 64);
            pack_panels(wos_l, nj, RS, R, RS, lw + wd_n + wr_n, 64);
        }
        if (p.h1 > p.h0) pack_panels(w1_.data(), S, H, p.h0, p.h1, w.data() + p.w1_off, 64);
        // w2 by rows: the thread's own slice of the hidden layer times all outputs (partial logits)
        if (p.h1 > p.h0) pack_panels(w2_.data() + static_cast<size_t>(p.h0) * OUT, p.h1 - p.h0, OUT, 0, OUT, w.data() + p.w2_off, 64);
        if (half) to_half(w, p.w_h);
        else p.w.swap(w);
    }
    return packs_.emplace(key, std::move(ps)).first->second;
}

void WaveNetCPU::run_stream_team(int b, int Tc, int64_t t0, const CondFrames& cond, float* hist_all, float* x_all,
                                 const float* noise_all, const float* teacher_all, float* out_all, float* logits_all,
                                 int nthreads, bool half) const {
    const WaveNetDims& d = d_;
    const int L = d.L, K = d.K, R = d.R, G = d.G, G2 = G / 2, S = d.S, OUT = d.OUT, RS = R + S;
    const int NZ = d.mode == 1 ? 2 : 1;
    const int64_t LG = static_cast<int64_t>(L) * G;
    const float* cP = cond.P + static_cast<int64_t>(b) * cond.F * LG;
    const float* cbias = cond.bias + static_cast<int64_t>(b) * LG;
    const int32_t* cf0 = cond.f0 + static_cast<int64_t>(b) * Tc;
    const float* cw = cond.wts + static_cast<int64_t>(b) * Tc * cond.NB;
    const int NB = cond.NB;
    float* hist = hist_all + static_cast<int64_t>(b) * hist_rows_ * R;
    const float* noise = noise_all ? noise_all + static_cast<int64_t>(b) * Tc * NZ : nullptr;
    const float* teacher = teacher_all ? teacher_all + static_cast<int64_t>(b) * Tc : nullptr;
    float* out = out_all + static_cast<int64_t>(b) * Tc;
    float* logits_out = logits_all ? logits_all + static_cast<int64_t>(b) * Tc * OUT : nullptr;
    const Kernels& kr = kernels();
    const float sqrt_half = std::sqrt(0.5f);
    const float skip_scale = std::sqrt(1.0f / L);
    const std::vector<Pack>& ps = packs(nthreads, half);

    // Work split per layer (one barrier per layer): thread t computes the gate for its gate
    // channels j0..j1 (columns of Wd), then its partial residual sums from those same channels
    // (rows j0..j1 of Wos) and publishes them, and adds their skip products to its own running
    // skip sum; after the barrier every thread adds the partials into its own full copy of the
    // residual vector. Partial slots alternate by layer parity so a thread can run ahead into the
    // next layer while another still reads. The last layer's slots also carry the skip sums, so
    // the output stack needs one more barrier per sample (partial logits): L + 1 in all.
    std::vector<float> part(static_cast<size_t>(2) * nthreads * RS), lgp(static_cast<size_t>(nthreads) * OUT);
    SpinBarrier bar(nthreads);
    const float x_start = x_all[b];
    float x_end = x_start;

    run_team(nthreads, [&](int tid, int nt) {
        const Pack& p = ps[tid];
        const int nj = p.j1 - p.j0, nh = p.h1 - p.h0;
        std::vector<float> acc(2 * nj + 1), z(nj + 1), h(R), hn(R), skip(S), y(S), xk(static_cast<size_t>(K) * R),
            h1(nh + 1), lg(OUT);
        float xin = x_start;
        for (int tt = 0; tt < Tc; ++tt) {
            const int64_t t = t0 + tt;
            const float xv = teacher ? teacher[tt] : xin;
            // input embedding, full vector in every thread (one-hot row for mu-law)
            if (d.mode == 0) {
                const int k = std::min(std::max(static_cast<int>(xv), 0), d.IN - 1);
                for (int r = 0; r < R; ++r) h[r] = emb_[static_cast<size_t>(k) * R + r] + emb_b_[r];
            } else {
                for (int r = 0; r < R; ++r) h[r] = xv * emb_[r] + emb_b_[r];
            }
            std::fill(skip.begin(), skip.end(), 0.0f);
            for (int l = 0; l < L; ++l) {
                const int dl = dil_[l], M = (K - 1) * dl;
                float* ring = hist + static_cast<int64_t>(off_[l]) * R;
                float* slot = part.data() + (static_cast<size_t>(l & 1) * nt + tid) * RS;
                if (nj > 0) {
                    // the taps side by side [x[t - (K-1) d], (x[t - d],) x[t]]: one K*R-long input
                    std::memcpy(xk.data(), ring + (t % M) * R, R * sizeof(float));
                    if (K == 3) std::memcpy(xk.data() + R, ring + ((t + dl) % M) * R, R * sizeof(float));
                    std::memcpy(xk.data() + (K - 1) * R, h.data(), R * sizeof(float));
                    // conditioning of this thread's gate inputs: bias + weighted projected frames
                    {
                        const float* bl = cbias + static_cast<int64_t>(l) * G;
                        float* a0 = acc.data();
                        float* a1 = acc.data() + nj;
                        for (int j = 0; j < nj; ++j) a0[j] = bl[p.j0 + j];
                        for (int j = 0; j < nj; ++j) a1[j] = bl[G2 + p.j0 + j];
                        // += wts[t] @ P[f0 .. f0 + NB, this layer's columns]: a matrix-vector
                        // product with NB inputs over rows L*G apart
                        const float* wt = cw + static_cast<int64_t>(tt) * NB;
                        const float* pr = cP + cf0[tt] * LG + static_cast<int64_t>(l) * G;
                        kr.axpy_cols(wt, NB, pr, static_cast<int>(LG), p.j0, p.j1, a0);
                        kr.axpy_cols(wt, NB, pr, static_cast<int>(LG), G2 + p.j0, G2 + p.j1, a1);
                    }
                    matvec(kr, xk.data(), K * R, p.w, p.w_h, l * p.layer_floats, 2 * nj, acc.data());
                    kr.gate_tanh_sigmoid(acc.data(), acc.data() + nj, z.data(), nj);
                    // residual partial into the published slot; skip straight into this
                    // thread's running skip sum (needed only after the last layer)
                    std::fill(slot, slot + R, 0.0f);
                    const size_t lo = l * p.layer_floats + p.wd_floats;
                    matvec(kr, z.data(), nj, p.w, p.w_h, lo, R, slot);
                    matvec(kr, z.data(), nj, p.w, p.w_h, lo + p.wr_floats, S, skip.data());
                } else {
                    std::fill(slot, slot + R, 0.0f);
                }
                // the last layer's slot also carries the thread's skip sum: one barrier serves both
                if (l == L - 1) std::memcpy(slot + R, skip.data(), S * sizeof(float));
                bar.wait();  // all partials of layer l are published; every thread has read its taps
                // the layer input enters its ring (each thread writes its own share of rows)
                float* rrow = ring + (t % M) * R;
                for (int r = p.r0; r < p.r1; ++r) rrow[r] = h[r];
                // h_next = (h + bias + sum of the threads' partials) * sqrt(1/2), in the order
                // bias, partial 0, partial 1, ... (the loops run over r innermost: vectorised)
                const float* bl = bos_.data() + static_cast<int64_t>(l) * RS;
                std::memcpy(hn.data(), bl, R * sizeof(float));
                for (int u = 0; u < nt; ++u) {
                    const float* pu = part.data() + (static_cast<size_t>(l & 1) * nt + u) * RS;
                    for (int r = 0; r < R; ++r) hn[r] += pu[r];
                }
                for (int r = 0; r < R; ++r) hn[r] = (h[r] + hn[r]) * sqrt_half;
                std::swap(h, hn);
            }
            // output stack: relu(skip * scale) -> W1 -> relu -> W2
            // (the slots of layer L-1 stay untouched until every thread has passed the logits barrier)
            std::memcpy(y.data(), skip_bias_.data(), S * sizeof(float));  // every layer's skip bias
            for (int u = 0; u < nt; ++u) {
                const float* su = part.data() + (static_cast<size_t>((L - 1) & 1) * nt + u) * RS + R;
                for (int s = 0; s < S; ++s) y[s] += su[s];
            }
            for (int s = 0; s < S; ++s) y[s] = std::max(y[s] * skip_scale, 0.0f);
            // W1 by columns (this thread's slice of the hidden layer), W2 by rows (that slice's
            // partial logits for every output): one barrier for the whole output stack
            float* mylg = lgp.data() + static_cast<size_t>(tid) * OUT;
            std::fill(mylg, mylg + OUT, 0.0f);
            if (nh > 0) {
                std::memcpy(h1.data(), b1_.data() + p.h0, nh * sizeof(float));
                matvec(kr, y.data(), S, p.w, p.w_h, p.w1_off, nh, h1.data());
                for (int i = 0; i < nh; ++i) h1[i] = std::max(h1[i], 0.0f);
                matvec(kr, h1.data(), nh, p.w, p.w_h, p.w2_off, OUT, mylg);
            }
            bar.wait();  // partial logits published (the slots are rewritten only after this
                         // sample's draw: every thread passes the next sample's layer barriers first)
            std::memcpy(lg.data(), b2_.data(), OUT * sizeof(float));
            for (int u = 0; u < nt; ++u) {
                const float* pu = lgp.data() + static_cast<size_t>(u) * OUT;
                for (int o = 0; o < OUT; ++o) lg[o] += pu[o];
            }
            // every thread draws the (deterministic) sample itself: no barrier after sampling
            float v;
            if (logits_out) v = xv;
            else if (d.mode == 0) v = static_cast<float>(sample_softmax_fast(kr, lg.data(), OUT, noise[tt]));
            else if (d.mode == 1) v = sample_mol(lg.data(), d.n_mix, noise[2 * tt], noise[2 * tt + 1], d.log_scale_min);
            else v = sample_gaussian(lg.data(), noise[tt], d.log_scale_min);
            if (tid == 0) {
                if (logits_out) std::memcpy(logits_out + static_cast<int64_t>(tt) * OUT, lg.data(), OUT * sizeof(float));
                out[tt] = v;
            }
            xin = v;
            // no barrier here: lg and the partial slots are rewritten only after barriers that
            // every thread passes once it has finished reading them
        }
        if (tid == 0) x_end = xin;
    });
    x_all[b] = teacher ? teacher[Tc - 1] : x_end;
}

}  // namespace agf
