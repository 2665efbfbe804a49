#include "cpu/wavernn.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "cpu/bf16.h"
#include "cpu/kernels.h"
#include "cpu/pack.h"
#include "cpu/sampling.h"
#include "cpu/team.h"

namespace agf {

WaveRNNCPU::WaveRNNCPU(const WaveRNNDims& d, const float* w_ix, const float* w_ic, const float* b_i, const float* wi1,
                       const float* wh1, const float* bi1, const float* bh1, const float* wi2, const float* wi2a,
                       const float* bi2, const float* wh2, const float* bh2, const float* wf1, const float* wf1a,
                       const float* bf1, const float* wf2, const float* wf2a, const float* bf2, const float* wf3,
                       const float* b3)
    : d_(d) {
    if (d.R < 1 || d.F < 1 || d.OUT < 2 || d.C < 1 || d.A < 1 || d.mode < 0 || d.mode > 2 ||
        (d.mode == 1 && d.OUT != 3 * d.n_mix) || (d.mode == 2 && d.OUT != 2))
        throw std::invalid_argument("WaveRNNCPU: invalid dimensions");
    const size_t R = d.R, F = d.F, O = d.OUT, C = d.C, A = d.A;
    auto cp = [](std::vector<float>& v, const float* p, size_t n) { v.assign(p, p + n); };
    cp(w_ix_, w_ix, R); cp(w_ic_, w_ic, (C + A) * R); cp(b_i_, b_i, R);
    cp(wi1_, wi1, R * 3 * R); cp(wh1_, wh1, R * 3 * R); cp(bi1_, bi1, 3 * R); cp(bh1_, bh1, 3 * R);
    cp(wi2_, wi2, R * 3 * R); cp(wi2a_, wi2a, A * 3 * R); cp(bi2_, bi2, 3 * R);
    cp(wh2_, wh2, R * 3 * R); cp(bh2_, bh2, 3 * R);
    cp(wf1_, wf1, R * F); cp(wf1a_, wf1a, A * F); cp(bf1_, bf1, F);
    cp(wf2_, wf2, F * F); cp(wf2a_, wf2a, A * F); cp(bf2_, bf2, F);
    cp(wf3_, wf3, F * O); cp(b3_, b3, O);
}

namespace {

// [n_in, 3*nj] <- the r|u|c column blocks of units j0..j1 from W [n_in, 3R]
void pack_gates(const std::vector<float>& W, int n_in, int R, int j0, int j1, std::vector<float>& dst) {
    const int nj = j1 - j0;
    dst.resize(static_cast<size_t>(n_in) * 3 * nj);
    for (int k = 0; k < n_in; ++k)
        for (int g = 0; g < 3; ++g)
            std::memcpy(dst.data() + (static_cast<size_t>(k) * 3 + g) * nj, W.data() + static_cast<size_t>(k) * 3 * R + g * R + j0,
                        nj * sizeof(float));
}


}  // namespace

// a slice [K, n] (fp32, ld n) into the weight mode's form; the fp32 copy is dropped unless used.
// Modes 0 / 1 take the block-sparse form when at least sparse_min of the slice's 16 x 1 blocks are
// zero, mode 3 when at least sparse_min of its 16 x 4 blocks (int8 quad rows) are.
void WaveRNNCPU::to_mode(Mat& m, int K, int n, int wmode, double sparse_min) {
    m.n = n;
    if (wmode <= 1 && K > 0 && n > 0 && sparse_min <= 1.0) {
        const auto rows = nonzero_blocks(m.f.data(), K, n);
        if (zero_block_fraction(rows, K) >= sparse_min) {
            if (wmode == 0) build_sparse(m.f.data(), K, n, rows, m.s, m.sf, [](float v) { return v; });
            else build_sparse(m.f.data(), K, n, rows, m.s, m.sh, [](float v) { return float_to_half(v); });
            std::vector<float>().swap(m.f);
            return;
        }
    }
    if (wmode == 2) {
        m.b.assign(bf16::panel_words(K, n), 0);
        if (n > 0) bf16::pack_panels(m.f.data(), K, n, 0, n, m.b.data());
        std::vector<float>().swap(m.f);
    } else if (wmode == 3) {
        int8::pack_weights(m.f.data(), K, n, 0, n, m.q);
        std::vector<float>().swap(m.f);
        // block-sparse in 16 x 4 blocks (int8.h) where a SIMD kernel skips them ("force": always)
        if (sparse_min <= 0.0 || (sparse_min <= 1.0 && int8::sparse_fast())) int8::sparsify(m.q, sparse_min);
    } else {
        to_panels64(m.f, K, n);  // 64-column panels (pack.h): each matrix pass streams contiguous memory
        if (wmode == 1) to_half(m.f, m.h);
    }
}

namespace {
// the fraction of zero blocks from which a slice runs block-sparse (AGF_SPARSE: "0" never, "force"
// always; past 1: never). At 40% the sparse product does about the dense one's work (its blocks
// cost more loads per multiply-add: the inputs are gathered by index).
double sparse_threshold() {
    const char* e = std::getenv("AGF_SPARSE");
    if (e && (std::strcmp(e, "0") == 0 || std::strcmp(e, "off") == 0)) return 2.0;
    if (e && std::strcmp(e, "force") == 0) return 0.0;
    return 0.4;
}
}  // namespace

const std::vector<WaveRNNCPU::Pack>& WaveRNNCPU::packs(int nt, int wmode) const {
    std::lock_guard<std::mutex> lock(mu_);
    const double sp = sparse_threshold();
    const int key = 3 * (4 * nt + wmode) + (sp > 1.0 ? 0 : sp > 0.0 ? 1 : 2);
    auto it = packs_.find(key);
    if (it != packs_.end()) return it->second;
    const int R = d_.R, F = d_.F, O = d_.OUT, A = d_.A;
    std::vector<Pack> ps(nt);
    for (int tid = 0; tid < nt; ++tid) {
        Pack& p = ps[tid];
        // units, fc and output columns in runs of 16: a thread's slice then starts on a 16 x 1 block
        // of a block-sparse model (sparse.h; models/wavernn/sparsity.py prunes in those blocks)
        split(R, tid, nt, 16, &p.j0, &p.j1);
        split(F, tid, nt, 16, &p.f0, &p.f1);
        split(O, tid, nt, 16, &p.o0, &p.o1);
        pack_gates(wi1_, R, R, p.j0, p.j1, p.wi1.f);
        pack_gates(wh1_, R, R, p.j0, p.j1, p.wh1.f);
        pack_gates(wi2_, R, R, p.j0, p.j1, p.wi2.f);
        pack_gates(wi2a_, A, R, p.j0, p.j1, p.wi2a.f);
        pack_gates(wh2_, R, R, p.j0, p.j1, p.wh2.f);
        pack_gates(bi1_, 1, R, p.j0, p.j1, p.bi1);
        pack_gates(bh1_, 1, R, p.j0, p.j1, p.bh1);
        pack_gates(bi2_, 1, R, p.j0, p.j1, p.bi2);
        pack_gates(bh2_, 1, R, p.j0, p.j1, p.bh2);
        pack_cols(wf1_, R, F, p.f0, p.f1, p.wf1.f);
        pack_cols(wf1a_, A, F, p.f0, p.f1, p.wf1a.f);
        pack_cols(bf1_, 1, F, p.f0, p.f1, p.bf1);
        pack_cols(wf2_, F, F, p.f0, p.f1, p.wf2.f);
        pack_cols(wf2a_, A, F, p.f0, p.f1, p.wf2a.f);
        pack_cols(bf2_, 1, F, p.f0, p.f1, p.bf2);
        pack_cols(wf3_, F, O, p.o0, p.o1, p.wf3.f);
        const int nj = p.j1 - p.j0, nf = p.f1 - p.f0, no = p.o1 - p.o0;
        to_mode(p.wi1, R, 3 * nj, wmode, sp); to_mode(p.wh1, R, 3 * nj, wmode, sp);
        to_mode(p.wi2, R, 3 * nj, wmode, sp); to_mode(p.wi2a, A, 3 * nj, wmode, sp);
        to_mode(p.wh2, R, 3 * nj, wmode, sp); to_mode(p.wf1, R, nf, wmode, sp); to_mode(p.wf1a, A, nf, wmode, sp);
        to_mode(p.wf2, F, nf, wmode, sp); to_mode(p.wf2a, A, nf, wmode, sp); to_mode(p.wf3, F, no, wmode, sp);
    }
    return packs_.emplace(key, std::move(ps)).first->second;
}

WaveRNNCPU::SparseInfo WaveRNNCPU::sparse_info(int nthreads, int wmode) const {
    const int nt = team_size(nthreads);
    SparseInfo r;
    for (const Pack& p : packs(nt, wmode))
        for (const Mat* m : p.mats()) {
            if (m->n == 0) continue;  // a thread with none of this matrix's columns
            ++r.slices;
            const SparseBlocks& s = m->q.sparse() ? m->q.sp : m->s;
            if (s.K == 0) continue;
            ++r.sparse;
            r.kept += s.blocks();
            r.total += static_cast<int64_t>(s.K) * s.strips();
        }
    return r;
}

int WaveRNNCPU::team_size(int nthreads) const { return std::max(1, std::min(nthreads, std::max(1, d_.R / 8))); }

void WaveRNNCPU::run(int B, int Tc, const float* mel, const float* aux, float* h1_state, float* h2_state,
                     float* x_state, const float* noise, const float* teacher, float* out, int64_t* cls, float* logits,
                     int nthreads, int wmode, int schedule) const {
    if (B < 1 || Tc < 0) throw std::invalid_argument("WaveRNNCPU.run: bad sizes");
    if (wmode < 0 || wmode > 3)
        throw std::invalid_argument("WaveRNNCPU.run: wmode is 0 (fp32), 1 (fp16), 2 (bf16) or 3 (int8)");
    if (schedule < 0 || schedule > 2)
        throw std::invalid_argument("WaveRNNCPU.run: schedule is 0 (auto), 1 (team) or 2 (split)");
    if (Tc == 0) return;
    nthreads = std::max(1, nthreads);
    if (B >= 2 && nthreads >= 2 && (schedule == 2 || (schedule == 0 && split_pays(B, nthreads, wmode)))) {
        // split: thread t runs streams lo..hi alone (a team of one, no barriers), in lockstep.
        // Every value is computed as by any team (see run_streams), so the bits are the same.
        const int64_t C = d_.C, A4 = 4 * d_.A, R = d_.R, O = d_.OUT, NZ = d_.mode == 1 ? 2 : 1;
        packs(1, wmode);  // built once, before the threads ask for it
        run_team(std::min(B, nthreads), [&](int tid, int nt) {
            const int lo = B * tid / nt, hi = B * (tid + 1) / nt;
            const int64_t s = static_cast<int64_t>(lo) * Tc;  // first (stream, step) of this share
            run_streams(hi - lo, Tc, mel + s * C, aux + s * A4, h1_state + lo * R, h2_state + lo * R, x_state + lo,
                        noise ? noise + s * NZ : nullptr, teacher ? teacher + s : nullptr, out + s,
                        cls ? cls + s : nullptr, logits ? logits + s * O : nullptr, 1, wmode);
        });
        return;
    }
    run_streams(B, Tc, mel, aux, h1_state, h2_state, x_state, noise, teacher, out, cls, logits, nthreads, wmode);
}

// Whether the split schedule beats the team for B >= 2 streams on nthreads >= 2. The team reads
// each weight once per step for all its streams but pays 5-6 barriers a step and splits every
// product over the threads; split has each thread stream every weight itself (nthreads x the L3
// traffic) with no barriers, and gives the threads whole streams (B = 3 on 2: one thread runs 2).
// Paired runs on the 2-core AVX2 Zen 3 (2026-12-07, R2, 8192 steps, split / team per stream, in one
// process; this VM's speed moved 2x between runs): B = 2, 90% block-sparse GRUs + fc1 / fc2 (fp16:
// 1.4 MB of weights a step) 1.06-2.0x, median 1.27x over 8 runs; fp32 (2.7 MB) 1.20-1.31x; sparse
// GRUs only (fp16, 2.4 MB) 1.21x; dense int8 (4.0 MB) 0.85-1.09x, fp16 (8.0 MB) 1.07x, fp32 (16 MB)
// 0.85x. B = 3: 0.72-1.10x (the imbalance); B = 4 (two streams a thread): sparse fp16 0.94-1.65x,
// median 0.98x, fp32 0.83-1.06x. So split while each thread has one stream (B <= nthreads; only
// B = nthreads = 2 was measured) and a step's weights are at most kSplitBytes.
bool WaveRNNCPU::split_pays(int B, int nthreads, int wmode) const {
    return B >= 2 && B <= nthreads && weight_bytes(team_size(nthreads), wmode) <= kSplitBytes;
}

// The bytes of GRU and fc weights one step streams (every thread slice of the packs for nt threads):
// the stored form of each slice, sparse blocks with their indices.
int64_t WaveRNNCPU::weight_bytes(int nt, int wmode) const {
    int64_t bytes = 0;
    for (const Pack& p : packs(nt, wmode))
        for (const Mat* m : p.mats())
            bytes += 4 * static_cast<int64_t>(m->f.size() + m->sf.size() + m->b.size() + m->q.w.size() + m->s.kidx.size() +
                                             m->q.sp.kidx.size()) +
                     2 * static_cast<int64_t>(m->h.size() + m->sh.size());
    return bytes;
}

void WaveRNNCPU::run_streams(int B, int Tc, const float* mel, const float* aux, float* h1_state, float* h2_state,
                             float* x_state, const float* noise, const float* teacher, float* out, int64_t* cls,
                             float* logits, int nthreads, int wmode) const {
    const int R = d_.R, F = d_.F, O = d_.OUT, C = d_.C, A = d_.A, A4 = 4 * A;
    const int nt = team_size(nthreads);
    const std::vector<Pack>& ps = packs(nt, wmode);
    const Kernels& kr = kernels();
    const int NZ = d_.mode == 1 ? 2 : 1;
    // shared, [B, width]; the GRU states are double-buffered (read old, write new, swap per step)
    std::vector<float> h1buf(2 * static_cast<size_t>(B) * R), h2buf(2 * static_cast<size_t>(B) * R);
    std::memcpy(h1buf.data(), h1_state, sizeof(float) * B * R);
    std::memcpy(h2buf.data(), h2_state, sizeof(float) * B * R);
    std::vector<float> x1(static_cast<size_t>(B) * R), x2(static_cast<size_t>(B) * R), y1(static_cast<size_t>(B) * F),
        y2(static_cast<size_t>(B) * F), lg(static_cast<size_t>(B) * O);
    std::vector<float> x_end(x_state, x_state + B);
    // the input projection's conditioning part  cI = b_i + [mel | a1] W_ic  does not depend on the
    // samples: computed for kSub steps at a time as small matrix products shared by the threads
    // (one barrier per kSub steps), instead of a matrix-vector product per step in every thread
    constexpr int kSub = 32;
    std::vector<float> cI(static_cast<size_t>(B) * kSub * R);
    SpinBarrier bar(nt);

    run_team(nt, [&](int tid, int) {
        const Pack& p = ps[tid];
        const int nj = p.j1 - p.j0, nf = p.f1 - p.f0, no = p.o1 - p.o0;
        std::vector<float> h(static_cast<size_t>(B) * R), gi(static_cast<size_t>(B) * 3 * nj + 1),
            gh(static_cast<size_t>(B) * 3 * nj + 1), xs(x_state, x_state + B),
            a2(static_cast<size_t>(B) * A), a3(static_cast<size_t>(B) * A), a4(static_cast<size_t>(B) * A);
        const int Kmax = std::max(std::max(R, F), A);
        std::vector<uint32_t> xb(wmode == 2 ? static_cast<size_t>(B) * bf16::pairs(Kmax) : 0);
        int8::Scratch xq;
        if (wmode == 3) xq.reserve(B, Kmax);
        // Y[B, N] (rows ldy apart) += X[B, K] (rows ldx apart) @ the weight in whichever form the
        // packs hold: fp32 / fp16 64-column panels, bf16 pair panels (X rounded to bf16 first) or
        // int8 quad panels (X quantised per row first)
        auto prod = [&](const float* X, int K, int ldx, const Mat& m, int N, float* Y, int ldy) {
            if (N <= 0) return;
            if (wmode == 2) bf16::accumulate(X, B, K, ldx, m.b.data(), N, Y, ldy, xb.data());
            else if (wmode == 3) int8::accumulate(X, B, ldx, m.q, Y, ldy, xq);
            else if (m.s.K > 0) {
                if (wmode == 1) kr.gemm_sparse_h(X, B, ldx, m.s, m.sh.data(), Y, ldy);
                else kr.gemm_sparse(X, B, ldx, m.s, m.sf.data(), Y, ldy);
            } else gemm_panels_of(kr, X, B, ldx, K, m.f, m.h, 0, N, Y, ldy);
        };
        for (int tt = 0; tt < Tc; ++tt) {
            if (tt % kSub == 0) {
                // thread tid takes steps s0..s1 of the kSub for every stream, all R columns (a
                // split by rows: each value is computed the same way for any thread count)
                const int ns = std::min(kSub, Tc - tt);
                int s0, s1;
                split(ns, tid, nt, 1, &s0, &s1);
                for (int b = 0; b < B && s1 > s0; ++b) {
                    float* cb = cI.data() + (static_cast<size_t>(b) * kSub + s0) * R;
                    for (int s = s0; s < s1; ++s) std::memcpy(cb + static_cast<size_t>(s - s0) * R, b_i_.data(), R * sizeof(float));
                    const int64_t bt = static_cast<int64_t>(b) * Tc + tt + s0;
                    kr.gemm_cols(mel + bt * C, s1 - s0, C, C, w_ic_.data(), R, 0, R, cb, R);
                    kr.gemm_cols(aux + bt * A4, s1 - s0, A4, A, w_ic_.data() + static_cast<size_t>(C) * R, R, 0, R, cb, R);
                }
                bar.wait();
            }
            const int cur = tt & 1, nxt = cur ^ 1;
            float* h1o = h1buf.data() + static_cast<size_t>(cur) * B * R;
            float* h1n = h1buf.data() + static_cast<size_t>(nxt) * B * R;
            float* h2o = h2buf.data() + static_cast<size_t>(cur) * B * R;
            float* h2n = h2buf.data() + static_cast<size_t>(nxt) * B * R;
            // this step's conditioning, gathered per stream: a2, a3, a4
            for (int b = 0; b < B; ++b) {
                const float* ab = aux + (static_cast<int64_t>(b) * Tc + tt) * A4;
                std::memcpy(a2.data() + static_cast<size_t>(b) * A, ab + A, A * sizeof(float));
                std::memcpy(a3.data() + static_cast<size_t>(b) * A, ab + 2 * A, A * sizeof(float));
                std::memcpy(a4.data() + static_cast<size_t>(b) * A, ab + 3 * A, A * sizeof(float));
            }
            // I: every thread builds the whole input vector itself from cI (no barrier)
            for (int b = 0; b < B; ++b) {
                const float xv = teacher ? teacher[static_cast<int64_t>(b) * Tc + tt] : xs[b];
                float* hb = h.data() + static_cast<size_t>(b) * R;
                const float* cb = cI.data() + (static_cast<size_t>(b) * kSub + tt % kSub) * R;
                for (int r = 0; r < R; ++r) hb[r] = cb[r] + xv * w_ix_[r];
            }
            if (nj > 0) {
                // GRU1 on units j0..j1
                for (int b = 0; b < B; ++b) {
                    std::memcpy(gi.data() + static_cast<size_t>(b) * 3 * nj, p.bi1.data(), 3 * nj * sizeof(float));
                    std::memcpy(gh.data() + static_cast<size_t>(b) * 3 * nj, p.bh1.data(), 3 * nj * sizeof(float));
                }
                prod(h.data(), R, R, p.wi1, 3 * nj, gi.data(), 3 * nj);
                prod(h1o, R, R, p.wh1, 3 * nj, gh.data(), 3 * nj);
                for (int b = 0; b < B; ++b) {
                    float* hn = h1n + static_cast<size_t>(b) * R + p.j0;
                    std::memcpy(hn, h1o + static_cast<size_t>(b) * R + p.j0, nj * sizeof(float));
                    kr.gru_update(gi.data() + static_cast<size_t>(b) * 3 * nj, gh.data() + static_cast<size_t>(b) * 3 * nj, hn, nj);
                    for (int j = 0; j < nj; ++j)
                        x1[static_cast<size_t>(b) * R + p.j0 + j] = hn[j] + h[static_cast<size_t>(b) * R + p.j0 + j];
                }
            }
            bar.wait();
            if (nj > 0) {
                // GRU2 on units j0..j1: input gates = hoisted aux part + W_ih2[:, :R] x1
                for (int b = 0; b < B; ++b) {
                    std::memcpy(gi.data() + static_cast<size_t>(b) * 3 * nj, p.bi2.data(), 3 * nj * sizeof(float));
                    std::memcpy(gh.data() + static_cast<size_t>(b) * 3 * nj, p.bh2.data(), 3 * nj * sizeof(float));
                }
                prod(a2.data(), A, A, p.wi2a, 3 * nj, gi.data(), 3 * nj);
                prod(x1.data(), R, R, p.wi2, 3 * nj, gi.data(), 3 * nj);
                prod(h2o, R, R, p.wh2, 3 * nj, gh.data(), 3 * nj);
                for (int b = 0; b < B; ++b) {
                    float* hn = h2n + static_cast<size_t>(b) * R + p.j0;
                    std::memcpy(hn, h2o + static_cast<size_t>(b) * R + p.j0, nj * sizeof(float));
                    kr.gru_update(gi.data() + static_cast<size_t>(b) * 3 * nj, gh.data() + static_cast<size_t>(b) * 3 * nj, hn, nj);
                    for (int j = 0; j < nj; ++j)
                        x2[static_cast<size_t>(b) * R + p.j0 + j] = hn[j] + x1[static_cast<size_t>(b) * R + p.j0 + j];
                }
            }
            bar.wait();
            if (nf > 0) {  // fc1 columns f0..f1
                for (int b = 0; b < B; ++b)
                    std::memcpy(y1.data() + static_cast<size_t>(b) * F + p.f0, p.bf1.data(), nf * sizeof(float));
                prod(a3.data(), A, A, p.wf1a, nf, y1.data() + p.f0, F);
                prod(x2.data(), R, R, p.wf1, nf, y1.data() + p.f0, F);
                for (int b = 0; b < B; ++b)
                    for (int f = p.f0; f < p.f1; ++f) y1[static_cast<size_t>(b) * F + f] = std::max(y1[static_cast<size_t>(b) * F + f], 0.0f);
            }
            bar.wait();
            if (nf > 0) {  // fc2
                for (int b = 0; b < B; ++b)
                    std::memcpy(y2.data() + static_cast<size_t>(b) * F + p.f0, p.bf2.data(), nf * sizeof(float));
                prod(a4.data(), A, A, p.wf2a, nf, y2.data() + p.f0, F);
                prod(y1.data(), F, F, p.wf2, nf, y2.data() + p.f0, F);
                for (int b = 0; b < B; ++b)
                    for (int f = p.f0; f < p.f1; ++f) y2[static_cast<size_t>(b) * F + f] = std::max(y2[static_cast<size_t>(b) * F + f], 0.0f);
            }
            bar.wait();
            if (no > 0) {  // fc3
                for (int b = 0; b < B; ++b) std::memcpy(lg.data() + static_cast<size_t>(b) * O + p.o0, b3_.data() + p.o0, no * sizeof(float));
                prod(y2.data(), F, F, p.wf3, no, lg.data() + p.o0, O);
            }
            bar.wait();
            // every thread samples every stream itself (deterministic): no barrier afterwards
            for (int b = 0; b < B; ++b) {
                const float* l = lg.data() + static_cast<size_t>(b) * O;
                const int64_t o = static_cast<int64_t>(b) * Tc + tt;
                if (teacher) {
                    if (tid == 0) std::memcpy(logits + o * O, l, O * sizeof(float));
                    continue;
                }
                float v;
                if (d_.mode == 0) {
                    const int k = sample_softmax_fast(kr, l, O, noise[o]);
                    v = (2.0f * static_cast<float>(k)) / static_cast<float>(O - 1) - 1.0f;
                    if (tid == 0 && cls) cls[o] = k;
                } else if (d_.mode == 1) {
                    v = sample_mol(l, d_.n_mix, noise[o * NZ], noise[o * NZ + 1], d_.log_scale_min);
                } else {
                    v = sample_gaussian(l, noise[o], d_.log_scale_min);
                }
                xs[b] = v;
                if (tid == 0) out[o] = v;
            }
        }
        if (tid == 0) x_end = xs;
    });
    const int last = Tc & 1;  // after Tc swaps the newest state is in buffer (Tc & 1)
    std::memcpy(h1_state, h1buf.data() + static_cast<size_t>(last) * B * R, sizeof(float) * B * R);
    std::memcpy(h2_state, h2buf.data() + static_cast<size_t>(last) * B * R, sizeof(float) * B * R);
    for (int b = 0; b < B; ++b) x_state[b] = teacher ? teacher[static_cast<int64_t>(b) * Tc + Tc - 1] : x_end[b];
}

}  // namespace agf
