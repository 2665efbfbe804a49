#include "cpu/wavenet.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "cpu/bf16.h"
#include "cpu/kernels.h"
#include "cpu/pack.h"
#include "cpu/sampling.h"
#include "cpu/team.h"

namespace agf {

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
                     const float* teacher, float* out, float* logits, int nthreads, int wmode, int schedule) const {
    if (B < 1 || Tc < 0 || t0 < 0) throw std::invalid_argument("WaveNetCPU.run: bad sizes");
    if (wmode < 0 || wmode > 3)
        throw std::invalid_argument("WaveNetCPU.run: wmode is 0 (fp32), 1 (fp16), 2 (bf16) or 3 (int8)");
    if (schedule < 0 || schedule > 2)
        throw std::invalid_argument("WaveNetCPU.run: schedule is 0 (auto), 1 (team) or 2 (split)");
    if (Tc == 0) return;
    nthreads = std::max(1, nthreads);
    // The arithmetic is that of nthreads parts (run_group) whichever way the streams are
    // scheduled, so a stream of a batch computes the same bits as that stream run alone.
    if (schedule == 0) schedule = split_pays(wmode) ? 2 : 1;
    if (schedule == 2 && B >= 2 && nthreads >= 2) {
        // split: each thread runs its own share of the streams in lockstep, every part itself,
        // with no barriers at all
        run_team(std::min(B, nthreads), [&](int tid, int nt) {
            const int lo = B * tid / nt, hi = B * (tid + 1) / nt;
            for (int g = lo; g < hi; g += kGroup)
                run_group(g, std::min(kGroup, hi - g), Tc, t0, cond, hist, x, noise, teacher, out, logits, 1, nthreads, wmode);
        });
        return;
    }
    // team: all streams in lockstep, the parts over the team, so each weight row is read once
    // per step for the whole group
    for (int b0 = 0; b0 < B; b0 += kGroup)
        run_group(b0, std::min(kGroup, B - b0), Tc, t0, cond, hist, x, noise, teacher, out, logits, nthreads, nthreads, wmode);
}


// Whether the split schedule beats the team (for B >= 2 streams on 2+ threads; run() checks).
// The team reads each weight once per step for all streams but pays L + 1 barriers per sample
// and splits small products; split streams every weight through each thread (twice the L3
// traffic on 2 threads) with no barriers.
// Paired runs on the 2-core Zen 4 (2026-11-30, per-stream samples/s split / team, B = 2..8,
// medians of 5-7 rounds): W1 (0.67 M weights) int8 1.6-2.2x, bf16 1.5-2.2x, fp16 1.2-1.9x,
// fp32 1.1-1.8x; W2 (0.87 M) int8 1.0-2.0x, bf16 1.2-2.0x, fp16 0.9-1.7x, fp32 0.7-1.6x;
// W4 (3.2 M) int8 1.2-1.7x, fp16 / bf16 0.7-1.3x, fp32 0.6-0.9x. So split while the weights
// a thread streams per sample stay under ~4 MB (W4 in bf16 is 6.3 MB): there the step is bound
// by latency and barriers, beyond it by the weight stream.
bool WaveNetCPU::split_pays(int wmode) const {
    const WaveNetDims& d = d_;
    const double per_layer = static_cast<double>(d.K) * d.R * d.G + static_cast<double>(d.G / 2) * (d.R + d.S);
    const double weights = d.L * per_layer + static_cast<double>(d.S) * d.H + static_cast<double>(d.H) * d.OUT;
    const double bytes = weights * (wmode == 0 ? 4 : wmode == 3 ? 1 : 2);
    return bytes <= 4.0e6;
}


const std::vector<WaveNetCPU::Pack>& WaveNetCPU::packs(int nt, int wmode) const {
    std::lock_guard<std::mutex> lock(mu_);
    const int key = 4 * nt + wmode;
    auto it = packs_.find(key);
    if (it != packs_.end()) return it->second;
    const WaveNetDims& d = d_;
    const int L = d.L, K = d.K, R = d.R, G = d.G, G2 = G / 2, S = d.S, H = d.H, OUT = d.OUT, RS = R + S;
    std::vector<Pack> ps(nt);
    for (int tid = 0; tid < nt; ++tid) {
        Pack& p = ps[tid];
        split(G2, tid, nt, 8, &p.j0, &p.j1);
        split(H, tid, nt, 8, &p.h0, &p.h1);
        split(R, tid, nt, 8, &p.r0, &p.r1);
        const int nj = p.j1 - p.j0;
        // every matrix in 64-column panels (pack.h), in the order the loop reads them (per layer
        // wd, then wos as its residual and skip parts; then w1, w2): one thread's weights for a whole sample are one sequential
        // stream, which the hardware prefetcher follows across matrix and layer boundaries
        const size_t wd_n = panel_floats(K * R, 2 * nj, 64), wr_n = panel_floats(nj, R, 64);
        p.layer_floats = wd_n + wr_n + panel_floats(nj, S, 64);
        p.wd_floats = wd_n;
        p.wr_floats = wr_n;
        p.w1_off = static_cast<size_t>(L) * p.layer_floats;
        p.w2_off = p.w1_off + panel_floats(S, p.h1 - p.h0, 64);
        const int nh = p.h1 - p.h0;
        const bool bf = wmode == 2, q8 = wmode == 3;
        p.wd_b = bf16::panel_words(K * R, 2 * nj);
        p.wr_b = bf16::panel_words(nj, R);
        p.lw_b = p.wd_b + p.wr_b + bf16::panel_words(nj, S);
        p.w1_b = static_cast<size_t>(L) * p.lw_b;
        p.w2_b = p.w1_b + bf16::panel_words(S, nh);
        std::vector<float> w(bf || q8 ? 0 : p.w2_off + panel_floats(nh, OUT, 64), 0.0f);
        if (bf) p.w_b.assign(p.w2_b + bf16::panel_words(nh, OUT), 0u);
        if (q8) p.q.resize(3 * static_cast<size_t>(L) + 2);
        std::vector<float> tmp(static_cast<size_t>(K) * R * 2 * nj);
        for (int l = 0; l < L && nj > 0; ++l) {
            const float* wl = wd_.data() + static_cast<int64_t>(l) * K * R * G;
            for (int row = 0; row < K * R; ++row) {
                float* dst = tmp.data() + static_cast<int64_t>(row) * 2 * nj;
                std::memcpy(dst, wl + static_cast<int64_t>(row) * G + p.j0, nj * sizeof(float));
                std::memcpy(dst + nj, wl + static_cast<int64_t>(row) * G + G2 + p.j0, nj * sizeof(float));
            }
            // wos rows j0..j1 split into the residual columns and the skip columns
            const float* wos_l = wos_.data() + (static_cast<int64_t>(l) * G2 + p.j0) * RS;
            if (q8) {
                // wd's columns are whole on every thread; wos is split by rows, so its column
                // scales come from all G2 rows: a thread's slice quantises as the whole matrix
                int8::pack_weights(tmp.data(), K * R, 2 * nj, 0, 2 * nj, p.q[3 * l]);
                std::vector<float> sc(RS);
                int8::column_scales(wos_.data() + static_cast<int64_t>(l) * G2 * RS, G2, RS, 0, RS, sc.data());
                int8::pack_weights(wos_l, nj, RS, 0, R, p.q[3 * l + 1], sc.data());
                int8::pack_weights(wos_l, nj, RS, R, RS, p.q[3 * l + 2], sc.data() + R);
                continue;
            }
            if (bf) {
                uint32_t* lw = p.w_b.data() + l * p.lw_b;
                bf16::pack_panels(tmp.data(), K * R, 2 * nj, 0, 2 * nj, lw);
                bf16::pack_panels(wos_l, nj, RS, 0, R, lw + p.wd_b);
                bf16::pack_panels(wos_l, nj, RS, R, RS, lw + p.wd_b + p.wr_b);
                continue;
            }
            float* lw = w.data() + l * p.layer_floats;
            pack_panels(tmp.data(), K * R, 2 * nj, 0, 2 * nj, lw, 64);
            pack_panels(wos_l, nj, RS, 0, R, lw + wd_n, 64);
            pack_panels(wos_l, nj, RS, R, RS, lw + wd_n + wr_n, 64);
        }
        // w2 by rows: the thread's own slice of the hidden layer times all outputs (partial logits)
        if (bf && nh > 0) {
            bf16::pack_panels(w1_.data(), S, H, p.h0, p.h1, p.w_b.data() + p.w1_b);
            bf16::pack_panels(w2_.data() + static_cast<size_t>(p.h0) * OUT, nh, OUT, 0, OUT, p.w_b.data() + p.w2_b);
        }
        if (q8 && nh > 0) {  // all of w1 (every thread computes the whole hidden layer), w2's rows h0..h1
            int8::pack_weights(w1_.data(), S, H, 0, H, p.q[3 * L]);
            std::vector<float> sc(OUT);
            int8::column_scales(w2_.data(), H, OUT, 0, OUT, sc.data());
            int8::pack_weights(w2_.data() + static_cast<size_t>(p.h0) * OUT, nh, OUT, 0, OUT, p.q[3 * L + 1], sc.data());
        }
        if (bf || q8) continue;
        if (nh > 0) pack_panels(w1_.data(), S, H, p.h0, p.h1, w.data() + p.w1_off, 64);
        if (nh > 0) pack_panels(w2_.data() + static_cast<size_t>(p.h0) * OUT, nh, OUT, 0, OUT, w.data() + p.w2_off, 64);
        if (wmode == 1) to_half(w, p.w_h);
        else p.w.swap(w);
    }
    return packs_.emplace(key, std::move(ps)).first->second;
}

void WaveNetCPU::run_group(int b0, int nb, int Tc, int64_t t0, const CondFrames& cond, float* hist_all, float* x_all,
                           const float* noise_all, const float* teacher_all, float* out_all, float* logits_all,
                           int nthreads, int nparts, int wmode) const {
    const WaveNetDims& d = d_;
    const int L = d.L, K = d.K, R = d.R, G = d.G, G2 = G / 2, S = d.S, OUT = d.OUT, RS = R + S, KR = K * R;
    const int NZ = d.mode == 1 ? 2 : 1;
    const int64_t LG = static_cast<int64_t>(L) * G;
    const int NB = cond.NB;
    const Kernels& kr = kernels();
    const float sqrt_half = std::sqrt(0.5f);
    const float skip_scale = std::sqrt(1.0f / L);
    const std::vector<Pack>& ps = packs(nparts, wmode);
    const bool bf = wmode == 2, q8 = wmode == 3;
    // stream i of the group is stream b0 + i of the call
    auto hist_of = [&](int i) { return hist_all + static_cast<int64_t>(b0 + i) * hist_rows_ * R; };

    // The nb streams advance in lockstep, sample by sample: every product is [nb, in] x [in, out],
    // so each weight row is read once per step for all of them (nb = 1: matrix-vector products).
    // The work is cut into nparts parts (the gate channels j0..j1 of each Pack) and the team's
    // nthreads threads take whole parts (nparts >= nthreads). The arithmetic depends on the parts
    // only, never on which thread runs them: a stream computes the same bits on a team of 2 with
    // a part each and on one thread running both parts, so a stream batched with others on one
    // thread equals that stream run alone on the whole team (WaveNetCPU::run).
    // Work per layer (one barrier per layer): part v computes the gate for its gate channels
    // (columns of Wd), then its partial residual sums from those same channels (rows j0..j1 of
    // Wos) and publishes them, and adds their skip products to its own running skip sums; after
    // the barrier every thread adds all parts' partials, in part order, into its own full copy of
    // the residual vectors. Partial slots alternate by layer parity so a thread can run ahead
    // into the next layer while another still reads. The last layer's slots also carry the skip
    // sums, so the output stack needs one more barrier per sample (partial logits): L + 1 in all.
    const size_t slot_n = static_cast<size_t>(nb) * RS;  // one part's slot: [nb, R + S]
    std::vector<float> part(2 * static_cast<size_t>(nparts) * slot_n), lgp(static_cast<size_t>(nparts) * nb * OUT);
    SpinBarrier bar(nthreads);
    std::vector<float> x_end(x_all + b0, x_all + b0 + nb);

    run_team(nthreads, [&](int tid, int nt) {
        const int v0 = nparts * tid / nt, v1 = nparts * (tid + 1) / nt;  // this thread's parts
        // per part rows: acc [nb, 2nj], z [nb, nj], skip [nb, S] (its running skip sums), h1 [nb, nh]
        struct Part {
            const Pack* p;
            int v, nj, nh;
            std::vector<float> acc, z, skip, h1;
        };
        std::vector<Part> mine;
        for (int v = v0; v < v1; ++v) {
            const Pack& p = ps[v];
            const int nj = p.j1 - p.j0, nh = p.h1 - p.h0;
            mine.push_back({&p, v, nj, nh, std::vector<float>(static_cast<size_t>(nb) * 2 * nj + 1),
                            std::vector<float>(static_cast<size_t>(nb) * nj + 1), std::vector<float>(static_cast<size_t>(nb) * S),
                            std::vector<float>(static_cast<size_t>(nb) * nh + 1)});
        }
        // the ring rows this thread writes: its parts' shares r0..r1, contiguous
        const int rr0 = ps[v0].r0, rr1 = ps[v1 - 1].r1;
        int maxnj = 0, maxnh = 0;
        for (const Part& q : mine) maxnj = std::max(maxnj, q.nj), maxnh = std::max(maxnh, q.nh);
        // per stream rows: xk [nb, K*R], h / hn [nb, R], y [nb, S], lg [nb, OUT]
        std::vector<float> h(static_cast<size_t>(nb) * R), hn(static_cast<size_t>(nb) * R), y(static_cast<size_t>(nb) * S),
            xk(static_cast<size_t>(nb) * KR), lg(static_cast<size_t>(nb) * OUT);
        std::vector<float> xin(x_all + b0, x_all + b0 + nb), xv(nb);
        std::vector<uint32_t> xb(static_cast<size_t>(nb) * bf16::pairs(std::max(std::max(KR, S), std::max(maxnj, maxnh))) + 1);
        // int8: the quantised input rows; the gate outputs z quantised on their fixed range
        // [-1, 1] (tanh x sigmoid) and the hidden layer on its whole row's range, so a part's
        // slice of either quantises as the whole vector does and the audio does not depend on
        // how the channels are split into parts (only the partials' fp32 sums do, as in fp32)
        int8::Scratch xq, xkq;  // xkq: a layer's taps; xq: z, the skip sums y, the hidden layer
        std::vector<float> h1w, zlo(nb, -1.0f), zhi(nb, 1.0f), hlo(nb, 0.0f), hhi(nb);
        if (q8) {
            xq.reserve(nb, std::max(S, std::max(maxnj, d.H)));
            xkq.reserve(nb, KR);
            h1w.resize(static_cast<size_t>(nb) * d.H);
        }
        // Y[nb, N] (rows ldy apart) += X[nb, K] (rows K apart) @ one of a part's matrices: its
        // 64-column fp32 / fp16 panels at offset `of` or its bf16 pair panels at word offset `ob`
        // (X rounded to bf16 first). The int8 products call cpu/int8.h themselves: their inputs
        // are quantised once per layer (taps), on a fixed range (z) or on the whole row (h1).
        auto prod = [&](const Pack& p, const float* X, int K_, size_t of, size_t ob, int N, float* Y, int ldy) {
            if (bf) bf16::accumulate(X, nb, K_, K_, p.w_b.data() + ob, N, Y, ldy, xb.data());
            else gemm_panels_of(kr, X, nb, K_, K_, p.w, p.w_h, of, N, Y, ldy);
        };
        for (int tt = 0; tt < Tc; ++tt) {
            const int64_t t = t0 + tt;
            for (int i = 0; i < nb; ++i) {
                const int b = b0 + i;
                xv[i] = teacher_all ? teacher_all[static_cast<int64_t>(b) * Tc + tt] : xin[i];
                // input embedding, full vector in every thread (one-hot row for mu-law)
                float* hi = h.data() + static_cast<size_t>(i) * R;
                if (d.mode == 0) {
                    const int k = std::min(std::max(static_cast<int>(xv[i]), 0), d.IN - 1);
                    for (int r = 0; r < R; ++r) hi[r] = emb_[static_cast<size_t>(k) * R + r] + emb_b_[r];
                } else {
                    for (int r = 0; r < R; ++r) hi[r] = xv[i] * emb_[r] + emb_b_[r];
                }
            }
            for (Part& q : mine) std::fill(q.skip.begin(), q.skip.end(), 0.0f);
            for (int l = 0; l < L; ++l) {
                const int dl = dil_[l], M = (K - 1) * dl;
                // the taps side by side [x[t - (K-1) d], (x[t - d],) x[t]]: one K*R-long input per stream
                for (int i = 0; i < nb; ++i) {
                    const float* ring = hist_of(i) + static_cast<int64_t>(off_[l]) * R;
                    float* xi = xk.data() + static_cast<size_t>(i) * KR;
                    std::memcpy(xi, ring + (t % M) * R, R * sizeof(float));
                    if (K == 3) std::memcpy(xi + R, ring + ((t + dl) % M) * R, R * sizeof(float));
                    std::memcpy(xi + (K - 1) * R, h.data() + static_cast<size_t>(i) * R, R * sizeof(float));
                }
                // int8: the taps quantised once for all of this thread's parts (each row on its own
                // range: the same bits whichever part reads them)
                if (q8) int8::quantize_into(xk.data(), nb, KR, KR, xkq);
                for (Part& q : mine) {
                    const Pack& p = *q.p;
                    const int nj = q.nj;
                    float* slot = part.data() + (static_cast<size_t>(l & 1) * nparts + q.v) * slot_n;
                    for (int i = 0; i < nb; ++i) std::fill(slot + static_cast<size_t>(i) * RS, slot + static_cast<size_t>(i) * RS + R, 0.0f);
                    if (nj > 0) {
                        for (int i = 0; i < nb; ++i) {
                            const int b = b0 + i;
                            // conditioning of this part's gate inputs: bias + weighted projected frames
                            const float* bl = cond.bias + static_cast<int64_t>(b) * LG + static_cast<int64_t>(l) * G;
                            float* a0 = q.acc.data() + static_cast<size_t>(i) * 2 * nj;
                            float* a1 = a0 + nj;
                            for (int j = 0; j < nj; ++j) a0[j] = bl[p.j0 + j];
                            for (int j = 0; j < nj; ++j) a1[j] = bl[G2 + p.j0 + j];
                            // += wts[t] @ P[f0 .. f0 + NB, this layer's columns]: a matrix-vector
                            // product with NB inputs over rows L*G apart
                            const int64_t bt = static_cast<int64_t>(b) * Tc + tt;
                            const float* wt = cond.wts + bt * NB;
                            const float* pr = cond.P + (static_cast<int64_t>(b) * cond.F + cond.f0[bt]) * LG +
                                              static_cast<int64_t>(l) * G;
                            kr.axpy_cols(wt, NB, pr, static_cast<int>(LG), p.j0, p.j1, a0);
                            kr.axpy_cols(wt, NB, pr, static_cast<int>(LG), G2 + p.j0, G2 + p.j1, a1);
                        }
                        if (q8) int8::accumulate_quantized(xkq, nb, p.q[3 * l], q.acc.data(), 2 * nj);
                        else prod(p, xk.data(), KR, l * p.layer_floats, l * p.lw_b, 2 * nj, q.acc.data(), 2 * nj);
                        for (int i = 0; i < nb; ++i) {
                            const float* ai = q.acc.data() + static_cast<size_t>(i) * 2 * nj;
                            kr.gate_tanh_sigmoid(ai, ai + nj, q.z.data() + static_cast<size_t>(i) * nj, nj);
                        }
                        // residual partials into the published slot; skips straight into this
                        // part's running skip sums (needed only after the last layer)
                        const size_t lo = l * p.layer_floats + p.wd_floats;
                        const size_t lob = l * p.lw_b + p.wd_b;
                        if (q8) {  // both products read z: quantise it once
                            int8::quantize_in_range_into(q.z.data(), nb, nj, nj, zlo.data(), zhi.data(), xq);
                            int8::accumulate_quantized(xq, nb, p.q[3 * l + 1], slot, RS);
                            int8::accumulate_quantized(xq, nb, p.q[3 * l + 2], q.skip.data(), S);
                        } else {
                            prod(p, q.z.data(), nj, lo, lob, R, slot, RS);
                            prod(p, q.z.data(), nj, lo + p.wr_floats, lob + p.wr_b, S, q.skip.data(), S);
                        }
                    }
                    // the last layer's slot also carries the part's skip sums: one barrier serves both
                    if (l == L - 1)
                        for (int i = 0; i < nb; ++i)
                            std::memcpy(slot + static_cast<size_t>(i) * RS + R, q.skip.data() + static_cast<size_t>(i) * S, S * sizeof(float));
                }
                bar.wait();  // all partials of layer l are published; every thread has read its taps
                const float* bl = bos_.data() + static_cast<int64_t>(l) * RS;
                for (int i = 0; i < nb; ++i) {
                    // the layer input enters its ring (each thread writes its parts' share of rows)
                    float* hi = h.data() + static_cast<size_t>(i) * R;
                    float* rrow = hist_of(i) + static_cast<int64_t>(off_[l]) * R + (t % M) * R;
                    for (int r = rr0; r < rr1; ++r) rrow[r] = hi[r];
                    // h_next = (h + bias + sum of the parts' partials) * sqrt(1/2), in the order
                    // bias, partial 0, partial 1, ... (the loops run over r innermost: vectorised)
                    float* hni = hn.data() + static_cast<size_t>(i) * R;
                    std::memcpy(hni, bl, R * sizeof(float));
                    for (int u = 0; u < nparts; ++u) {
                        const float* pu = part.data() + (static_cast<size_t>(l & 1) * nparts + u) * slot_n + static_cast<size_t>(i) * RS;
                        for (int r = 0; r < R; ++r) hni[r] += pu[r];
                    }
                    for (int r = 0; r < R; ++r) hni[r] = (hi[r] + hni[r]) * sqrt_half;
                }
                std::swap(h, hn);
            }
            // output stack: relu(skip * scale) -> W1 -> relu -> W2
            // (the slots of layer L-1 stay untouched until every thread has passed the logits barrier)
            for (int i = 0; i < nb; ++i) {
                float* yi = y.data() + static_cast<size_t>(i) * S;
                std::memcpy(yi, skip_bias_.data(), S * sizeof(float));  // every layer's skip bias
                for (int u = 0; u < nparts; ++u) {
                    const float* su = part.data() + (static_cast<size_t>((L - 1) & 1) * nparts + u) * slot_n + static_cast<size_t>(i) * RS + R;
                    for (int s = 0; s < S; ++s) yi[s] += su[s];
                }
                for (int s = 0; s < S; ++s) yi[s] = std::max(yi[s] * skip_scale, 0.0f);
            }
            // W1 by columns (a part's slice of the hidden layer), W2 by rows (that slice's partial
            // logits for every output): one barrier for the whole output stack
            if (q8 && maxnh > 0) {  // every thread computes the whole hidden layer once (all of w1)
                const int H = d.H;
                for (int i = 0; i < nb; ++i) std::memcpy(h1w.data() + static_cast<size_t>(i) * H, b1_.data(), H * sizeof(float));
                const Part& q0 = *std::find_if(mine.begin(), mine.end(), [](const Part& q) { return q.nh > 0; });
                int8::accumulate(y.data(), nb, S, q0.p->q[3 * L], h1w.data(), H, xq);
                for (int i = 0; i < nb; ++i) {
                    float* hw = h1w.data() + static_cast<size_t>(i) * H;
                    for (int o = 0; o < H; ++o) hw[o] = std::max(hw[o], 0.0f);
                    hhi[i] = max_of(hw, H, 0.0f);
                }
            }
            for (Part& q : mine) {
                const Pack& p = *q.p;
                const int nh = q.nh;
                float* mylg = lgp.data() + static_cast<size_t>(q.v) * nb * OUT;
                std::fill(mylg, mylg + static_cast<size_t>(nb) * OUT, 0.0f);
                if (nh > 0 && q8) {
                    int8::quantize_in_range_into(h1w.data() + p.h0, nb, nh, d.H, hlo.data(), hhi.data(), xq);
                    int8::accumulate_quantized(xq, nb, p.q[3 * L + 1], mylg, OUT);
                } else if (nh > 0) {
                    float* h1 = q.h1.data();
                    for (int i = 0; i < nb; ++i) std::memcpy(h1 + static_cast<size_t>(i) * nh, b1_.data() + p.h0, nh * sizeof(float));
                    prod(p, y.data(), S, p.w1_off, p.w1_b, nh, h1, nh);
                    for (size_t i = 0; i < static_cast<size_t>(nb) * nh; ++i) h1[i] = std::max(h1[i], 0.0f);
                    prod(p, h1, nh, p.w2_off, p.w2_b, OUT, mylg, OUT);
                }
            }
            bar.wait();  // partial logits published (the slots are rewritten only after this
                         // sample's draw: every thread passes the next sample's layer barriers first)
            for (int i = 0; i < nb; ++i) {
                const int b = b0 + i;
                float* lgi = lg.data() + static_cast<size_t>(i) * OUT;
                std::memcpy(lgi, b2_.data(), OUT * sizeof(float));
                for (int u = 0; u < nparts; ++u) {
                    const float* pu = lgp.data() + (static_cast<size_t>(u) * nb + i) * OUT;
                    for (int o = 0; o < OUT; ++o) lgi[o] += pu[o];
                }
                // every thread draws the (deterministic) sample itself: no barrier after sampling
                const int64_t bt = static_cast<int64_t>(b) * Tc + tt;
                float v;
                if (logits_all) v = xv[i];
                else if (d.mode == 0) v = static_cast<float>(sample_softmax_fast(kr, lgi, OUT, noise_all[bt]));
                else if (d.mode == 1) v = sample_mol(lgi, d.n_mix, noise_all[bt * NZ], noise_all[bt * NZ + 1], d.log_scale_min);
                else v = sample_gaussian(lgi, noise_all[bt], d.log_scale_min);
                if (tid == 0) {
                    if (logits_all) std::memcpy(logits_all + bt * OUT, lgi, OUT * sizeof(float));
                    out_all[bt] = v;
                }
                xin[i] = v;
            }
            // no barrier here: lg and the partial slots are rewritten only after barriers that
            // every thread passes once it has finished reading them
        }
        if (tid == 0) x_end = xin;
    });
    for (int i = 0; i < nb; ++i) x_all[b0 + i] = teacher_all ? teacher_all[static_cast<int64_t>(b0 + i) * Tc + Tc - 1] : x_end[i];
}

}  // namespace agf
