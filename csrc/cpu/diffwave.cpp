#include "cpu/diffwave.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "cpu/bf16.h"
#include "cpu/bigbuf.h"
#include "cpu/kernels.h"
#include "cpu/pack.h"
#include "cpu/team.h"

namespace agf {

namespace {
// Time rows per block: a multiple of the GEMM's 6-row register tile; the block's scratch
// (A [96, 3C], Z and O [96, 2C], gate [96, C]: ~170 KB for C=64) and one layer's weights
// (~170 KB) stay in a 512 KB L2.
constexpr int kBlock = 96;
constexpr int kPair = kBlock / 2;  // Winograd pairs per block

constexpr int kAhead = 4;  // rows prefetched ahead in the layer's row loops
inline void prefetch_row(const float* p, int C) {
    for (int c = 0; c < C; c += 16) __builtin_prefetch(p + c);  // one 64-byte line per 16 floats
}

// Residual and skip of one output row: x_out = (x_in + residual) / sqrt(2); skip (+)= skip part.
inline void residual_skip(const float* __restrict orow, const float* __restrict xr, float* __restrict yr,
                          float* __restrict sr, int C, bool first, float sqrt2) {
    for (int c = 0; c < C; ++c) yr[c] = (xr[c] + orow[c]) / sqrt2;
    if (first)
        std::memcpy(sr, orow + C, C * sizeof(float));
    else
        for (int c = 0; c < C; ++c) sr[c] = orow[C + c] + sr[c];
}
}  // namespace

// One thread's buffers for a block: fp32 A [kPair, 4C] (Winograd inputs U1..U4) or [kBlock, 3C]
// (direct taps), Z / O [kBlock, 2C], P / Q [kPair, 2C], G [kBlock, C], MR [kBlock, M] (mel rows),
// tr [kBlock] (each Z row's time); bf16 pairs of A (each U_j its own [pairs(C)] run, so an odd C
// stays aligned), of MR and of G.
struct DiffWaveCPU::Scratch {
    std::vector<float> A, Z, P, Q, G, O, MR;
    std::vector<int64_t> tr;
    std::vector<uint32_t> Ab, MRb, Gb;
    Scratch(int C, int M, bool bf16)
        : A(static_cast<size_t>(kBlock) * 4 * C), Z(static_cast<size_t>(kBlock) * 2 * C),
          P(static_cast<size_t>(kPair) * 2 * C), Q(static_cast<size_t>(kPair) * 2 * C), G(static_cast<size_t>(kBlock) * C),
          O(static_cast<size_t>(kBlock) * 2 * C), MR(static_cast<size_t>(kBlock) * std::max(M, 1)), tr(kBlock),
          Ab(bf16 ? static_cast<size_t>(kPair) * 4 * bf16::pairs(C) : 0),
          MRb(bf16 ? static_cast<size_t>(kBlock) * bf16::pairs(std::max(M, 1)) : 0),
          Gb(bf16 ? static_cast<size_t>(kBlock) * bf16::pairs(C) : 0) {}
};

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
    // Winograd F(2,3) filter transforms per layer (float64, then rounded): G1 = g0,
    // G2 = (g0 + g1 + g2) / 2, G3 = (g0 - g1 + g2) / 2, G4 = -g2 (negated so the product
    // accumulates straight into the second output)
    wg_.resize(L * 4 * po);
    const size_t pb = bf16::panel_words(d.C, 2 * d.C), pbc = bf16::panel_words(d.M, 2 * d.C);
    wgb_.resize(L * 4 * pb);
    wcb_.resize(L * pbc);
    wob_.resize(L * pb);
    std::vector<float> g(4 * C * 2 * C);
    for (size_t l = 0; l < L; ++l) {
        const float* w = wd + l * K * 2 * C;
        const size_t CC = C * 2 * C;
        for (size_t i = 0; i < CC; ++i) {
            const double g0 = w[i], g1 = w[CC + i], g2 = w[2 * CC + i];
            g[i] = static_cast<float>(g0);
            g[CC + i] = static_cast<float>((g0 + g1 + g2) * 0.5);
            g[2 * CC + i] = static_cast<float>((g0 - g1 + g2) * 0.5);
            g[3 * CC + i] = static_cast<float>(-g2);
        }
        for (int j = 0; j < 4; ++j)
            pack_panels(g.data() + j * CC, d.C, 2 * d.C, 0, 2 * d.C, wg_.data() + (l * 4 + j) * po);
        // bf16 copies: the fp32 Winograd filters rounded, the conditioner and output weights
        for (int j = 0; j < 4; ++j)
            bf16::pack_panels(g.data() + j * CC, d.C, 2 * d.C, 0, 2 * d.C, wgb_.data() + (l * 4 + j) * pb);
        if (d.M) bf16::pack_panels(w + 3 * C * 2 * C, d.M, 2 * d.C, 0, 2 * d.C, wcb_.data() + l * pbc);
        bf16::pack_panels(wo + l * C * 2 * C, d.C, 2 * d.C, 0, 2 * d.C, wob_.data() + l * pb);
    }
    bout_ = *bout;
}

// One residual layer by Winograd F(2,3) (each dilated tap product of the pair of outputs t,
// t + d shares its inputs): with d0..d3 = y(t-d), y(t), y(t+d), y(t+2d),
//   out(t)   = (d0 - d2) G1 + (d1 + d2) G2 + (d2 - d1) G3
//   out(t+d) = (d1 + d2) G2 - (d2 - d1) G3 - (d1 - d3) g2
// four [n, C] x [C, 2C] products per pair instead of six (2C instead of 3C multiply-adds per
// output channel). Pair bases are the t with floor(t / d) even; a block holds kPair of them
// (their partners make the other half of its 2 * kPair output rows). This thread takes blocks
// [q0, q1) of the B * blocks-per-row list.
namespace {
// Z rows r < n: the hoisted bias + conditioner rows of times tr[r] of stream b (cache: one
// layer's [B, T, 2C]; a partner time past the end reads the last row, computed and dropped)
void gather_cache(const float* cache, int b, int64_t T, int C2, const int64_t* tr, int n, float* Z) {
    for (int r = 0; r < n; ++r) {
        const int64_t t = std::min<int64_t>(tr[r], T - 1);
        std::memcpy(Z + static_cast<size_t>(r) * C2, cache + (static_cast<size_t>(b) * T + t) * C2, C2 * sizeof(float));
    }
}
}  // namespace

void DiffWaveCPU::layer_winograd(int l, int d, int B, int64_t T, const float* e, const float* xin, float* xout,
                                 float* skip, const float* cache, const float* mel, const uint32_t* melb, int tid,
                                 int nt, Scratch& s, bool bf16) const {
    const int C = d_.C, M = d_.M, C2 = 2 * C, C4 = 4 * C;
    const size_t pc = panel_floats(M, C2), po = panel_floats(C, C2);
    const Kernels& kr = kernels();
    float *A = s.A.data(), *Z = s.Z.data(), *P = s.P.data(), *Q = s.Q.data(), *G = s.G.data(), *O = s.O.data(),
          *MR = s.MR.data();
    int64_t* tr = s.tr.data();
    // bf16 products: inputs as pairs, weights from the bf16 copies
    const bf16::GemmFn gb = bf16 ? bf16::gemm() : nullptr;
    const bf16::PackFn pk = bf16 ? bf16::packer() : nullptr;
    const int Kc = bf16::pairs(C), Km = bf16::pairs(std::max(M, 1));
    const size_t pb = bf16::panel_words(C, C2), pbc = bf16::panel_words(M, C2);
    const uint32_t* wgb = wgb_.data() + static_cast<size_t>(l) * 4 * pb;
    const float rsqrt2 = static_cast<float>(std::sqrt(2.0));
    const int64_t full = T / (2 * static_cast<int64_t>(d));
    const int64_t np = full * d + std::min<int64_t>(d, T - full * 2 * d);  // pair bases per row
    const int64_t nbp = (np + kPair - 1) / kPair, nb_all = nbp * B;
    const int64_t q0 = nb_all * tid / nt, q1 = nb_all * (tid + 1) / nt;
    const float* wg = wg_.data() + static_cast<size_t>(l) * 4 * po;
    const float* bl = bd_.data() + static_cast<size_t>(l) * C2;
    const float* bol = bo_.data() + static_cast<size_t>(l) * C2;
    for (int64_t q = q0; q < q1; ++q) {
        const int b = static_cast<int>(q / nbp);
        const int64_t i0 = (q % nbp) * kPair;
        const int n = static_cast<int>(std::min<int64_t>(kPair, np - i0));
        const float* xbase = xin + static_cast<size_t>(b) * T * C;
        for (int r = 0; r < n; ++r) {
            const int64_t ii = i0 + r, t = (ii / d) * 2 * d + ii % d;
            tr[r] = t;
            tr[n + r] = t + d;
            if (r + kAhead < n) {  // the rows a few pairs ahead: the loop is bound by their L3 latency
                const int64_t ia = ii + kAhead, ta = (ia / d) * 2 * d + ia % d;
                for (int j = 0; j < 4; ++j) {
                    const int64_t tt = ta + (j - 1) * static_cast<int64_t>(d);
                    if (tt >= 0 && tt < T) prefetch_row(xbase + tt * C, C);
                }
            }
            // y(tt) = x(tt) + e inside the signal, 0 outside (the reference's zero padding)
            float* __restrict u = A + static_cast<size_t>(r) * C4;
            float* ys[4] = {P, P + C, P + 2 * C, P + 3 * C};  // P is free until the products: 4 rows of y
            for (int j = 0; j < 4; ++j) {
                const int64_t tt = t + (j - 1) * static_cast<int64_t>(d);
                if (tt >= 0 && tt < T) {
                    const float* __restrict xr = xbase + tt * C;
                    float* __restrict yj = ys[j];
                    for (int c = 0; c < C; ++c) yj[c] = xr[c] + e[c];
                } else {
                    std::memset(ys[j], 0, C * sizeof(float));
                }
            }
            const float* __restrict y0 = ys[0];
            const float* __restrict y1 = ys[1];
            const float* __restrict y2 = ys[2];
            const float* __restrict y3 = ys[3];
            for (int c = 0; c < C; ++c) u[c] = y0[c] - y2[c];
            for (int c = 0; c < C; ++c) u[C + c] = y1[c] + y2[c];
            for (int c = 0; c < C; ++c) u[2 * C + c] = y2[c] - y1[c];
            for (int c = 0; c < C; ++c) u[3 * C + c] = y1[c] - y3[c];
        }
        // Z rows: [0, n) outputs t, [n, 2n) outputs t + d (a partner past the end is computed
        // and dropped). Z = bias (+ conditioner) + U1 G1 (rows t) or - U4 g2 (rows t + d).
        if (bf16) {
            uint32_t* Ab = s.Ab.data();
            // an even C: the n rows of U1..U4 are one contiguous run whose pairs land where the
            // per-U_j layout puts them (Kc = C / 2): one conversion call instead of 4
            if (C % 2 == 0) pk(A, 1, n * C4, 0, Ab, 0);
            else
                for (int j = 0; j < 4; ++j) pk(A + j * C, n, C, C4, Ab + j * Kc, 4 * Kc);
            if (cache) {  // bias + conditioner of this layer, hoisted (computed once per call)
                gather_cache(cache, b, T, C2, tr, 2 * n, Z);
                gb(Ab, n, 4 * Kc, Kc, wgb, C2, nullptr, false, Z, C2);                                            // U1 G1
                gb(Ab + 3 * Kc, n, 4 * Kc, Kc, wgb + 3 * pb, C2, nullptr, false, Z + static_cast<size_t>(n) * C2, C2);  // -U4 g2
            } else if (M > 0) {
                // the mel rows were rounded once per call (melb, [B, T, Km] words): gathered here
                for (int r = 0; r < 2 * n; ++r) {
                    const int64_t t = std::min<int64_t>(tr[r], T - 1);
                    std::memcpy(s.MRb.data() + static_cast<size_t>(r) * Km, melb + (static_cast<size_t>(b) * T + t) * Km,
                                Km * sizeof(uint32_t));
                }
                gb(s.MRb.data(), 2 * n, Km, Km, wcb_.data() + l * pbc, C2, bl, true, Z, C2);
                gb(Ab, n, 4 * Kc, Kc, wgb, C2, nullptr, false, Z, C2);                                            // U1 G1
                gb(Ab + 3 * Kc, n, 4 * Kc, Kc, wgb + 3 * pb, C2, nullptr, false, Z + static_cast<size_t>(n) * C2, C2);  // -U4 g2
            } else {
                gb(Ab, n, 4 * Kc, Kc, wgb, C2, bl, true, Z, C2);
                gb(Ab + 3 * Kc, n, 4 * Kc, Kc, wgb + 3 * pb, C2, bl, true, Z + static_cast<size_t>(n) * C2, C2);
            }
            gb(Ab + Kc, n, 4 * Kc, Kc, wgb + pb, C2, nullptr, true, P, C2);           // U2 G2
            gb(Ab + 2 * Kc, n, 4 * Kc, Kc, wgb + 2 * pb, C2, nullptr, true, Q, C2);   // U3 G3
        } else if (!cache && M > 0) {
            for (int r = 0; r < 2 * n; ++r) {
                const int64_t t = std::min<int64_t>(tr[r], T - 1);
                std::memcpy(MR + static_cast<size_t>(r) * M, mel + (static_cast<size_t>(b) * T + t) * M, M * sizeof(float));
            }
            kr.gemm_packed_set(MR, 2 * n, M, M, wc_.data() + l * pc, C2, bl, Z, C2);
            kr.gemm_packed(A, n, C4, C, wg, C2, Z, C2);
            kr.gemm_packed(A + 3 * C, n, C4, C, wg + 3 * po, C2, Z + static_cast<size_t>(n) * C2, C2);
        } else if (cache) {
            gather_cache(cache, b, T, C2, tr, 2 * n, Z);
            kr.gemm_packed(A, n, C4, C, wg, C2, Z, C2);
            kr.gemm_packed(A + 3 * C, n, C4, C, wg + 3 * po, C2, Z + static_cast<size_t>(n) * C2, C2);
        } else {
            kr.gemm_packed_set(A, n, C4, C, wg, C2, bl, Z, C2);                                          // U1 G1
            kr.gemm_packed_set(A + 3 * C, n, C4, C, wg + 3 * po, C2, bl, Z + static_cast<size_t>(n) * C2, C2);  // -U4 g2
        }
        if (!bf16) {
            kr.gemm_packed_set(A + C, n, C4, C, wg + po, C2, nullptr, P, C2);           // U2 G2
            kr.gemm_packed_set(A + 2 * C, n, C4, C, wg + 2 * po, C2, nullptr, Q, C2);   // U3 G3
        }
        for (int r = 0; r < n; ++r) {
            float* __restrict z0 = Z + static_cast<size_t>(r) * C2;
            float* __restrict z1 = Z + static_cast<size_t>(n + r) * C2;
            const float* __restrict pr = P + static_cast<size_t>(r) * C2;
            const float* __restrict qr = Q + static_cast<size_t>(r) * C2;
            for (int c = 0; c < C2; ++c) {
                z0[c] += pr[c] + qr[c];
                z1[c] += pr[c] - qr[c];
            }
        }
        for (int r = 0; r < 2 * n; ++r) {
            const float* zr = Z + static_cast<size_t>(r) * C2;
            kr.gate_sigmoid_tanh(zr, zr + C, G + static_cast<size_t>(r) * C, C);
        }
        if (bf16) {
            if (C % 2 == 0) pk(G, 1, 2 * n * C, 0, s.Gb.data(), 0);  // contiguous rows, as for A
            else pk(G, 2 * n, C, C, s.Gb.data(), Kc);
            gb(s.Gb.data(), 2 * n, Kc, Kc, wob_.data() + l * pb, C2, bol, true, O, C2);
        } else {
            kr.gemm_packed_set(G, 2 * n, C, C, wo_.data() + l * po, C2, bol, O, C2);
        }
        for (int r = 0; r < 2 * n; ++r) {
            if (tr[r] >= T) continue;
            if (r + kAhead < 2 * n && tr[r + kAhead] < T) {  // skip (read-modify-write) and xout rows ahead
                const size_t ra = (static_cast<size_t>(b) * T + tr[r + kAhead]) * C;
                prefetch_row(skip + ra, C);
                prefetch_row(xout + ra, C);
            }
            const size_t row = (static_cast<size_t>(b) * T + tr[r]) * C;
            residual_skip(O + static_cast<size_t>(r) * C2, xin + row, xout + row, skip + row, C, l == 0, rsqrt2);
        }
    }
}

void DiffWaveCPU::run(int B, int64_t T, int S, const float* eproj, const float* c1, const float* c2,
                      const float* sigma, const float* noise, const float* mel, float* out, int nthreads,
                      int hoist, bool winograd, bool bf16) const {
    if (B < 1 || T < 0 || S < 1) throw std::invalid_argument("DiffWaveCPU.run: bad sizes");
    if (bf16 && !winograd) throw std::invalid_argument("DiffWaveCPU.run: bf16 products run the Winograd path");
    if (d_.M > 0 && mel == nullptr) throw std::invalid_argument("DiffWaveCPU.run: this model needs a mel");
    if (T == 0) return;
    const int C = d_.C, L = d_.L, M = d_.M, C2 = 2 * C, K = 3 * C;
    // layers 0 .. Lh-1 read their conditioner projections from the cache
    const int Lh = M > 0 ? std::max(0, std::min(hoist, L)) : 0;
    const size_t pt = panel_floats(K, C2), pc = panel_floats(M, C2), po = panel_floats(C, C2);
    const int64_t nblk_t = (T + kBlock - 1) / kBlock, nblk = nblk_t * B;
    const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nthreads, nblk)));
    const Kernels& kr = kernels();
    const size_t BTC = static_cast<size_t>(B) * T * C;
    // every row of these is written before it is read (bigbuf.h: why not std::vector)
    BigBuffer<float> xa(BTC), xb(BTC), skip(BTC);  // [B, T, C]: layer input / output, skip sum
    BigBuffer<float> cache(static_cast<size_t>(Lh) * B * T * C2);  // [Lh, B, T, 2C]
    std::vector<float> audio(noise, noise + static_cast<size_t>(B) * T);        // x_T
    // bf16: the mel rows rounded to bf16 pairs once per call ([B, T, Km] words; every layer and
    // step reads the same rows)
    const int Km = bf16::pairs(std::max(M, 1));
    std::vector<uint32_t> melb(bf16 && M > 0 ? static_cast<size_t>(B) * T * Km : 0);
    const float rsqrt2 = static_cast<float>(std::sqrt(2.0)), rsqrtL = static_cast<float>(std::sqrt(double(L)));
    SpinBarrier bar(nt);

    run_team(nt, [&](int tid, int) {
        const int64_t blk0 = nblk * tid / nt, blk1 = nblk * (tid + 1) / nt;
        Scratch sc(C, M, bf16);
        std::vector<float>& A = sc.A, & Z = sc.Z, & G = sc.G, & O = sc.O;
        std::vector<float> H(static_cast<size_t>(kBlock) * C);
        auto rows = [&](int64_t blk, int* b, int64_t* t0, int* n) {
            *b = static_cast<int>(blk / nblk_t);
            *t0 = (blk % nblk_t) * kBlock;
            *n = static_cast<int>(std::min<int64_t>(kBlock, T - *t0));
        };
        if (!melb.empty()) {
            const int64_t r0 = static_cast<int64_t>(B) * T * tid / nt, r1 = static_cast<int64_t>(B) * T * (tid + 1) / nt;
            if (r1 > r0) bf16::packer()(mel + r0 * M, static_cast<int>(r1 - r0), M, M, melb.data() + r0 * Km, Km);
            bar.wait();
        }
        // the hoisted layers' conditioner projections, once per utterance, by the product the
        // layer would run per step (fp32 or bf16; a row's result does not depend on the rows
        // around it): the same bits as computing them every step
        for (int l = 0; l < Lh; ++l) {
            for (int64_t blk = blk0; blk < blk1; ++blk) {
                int b, n; int64_t t0;
                rows(blk, &b, &t0, &n);
                const size_t row = static_cast<size_t>(b) * T + t0;
                float* zc = cache.data() + (static_cast<size_t>(l) * B * T + row) * C2;
                const float* bl = bd_.data() + static_cast<size_t>(l) * C2;
                if (bf16)
                    bf16::gemm()(melb.data() + row * Km, n, Km, Km, wcb_.data() + l * bf16::panel_words(M, C2), C2, bl,
                                 true, zc, C2);
                else
                    kr.gemm_packed_set(mel + row * M, n, M, M, wc_.data() + l * pc, C2, bl, zc, C2);
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
                if (winograd) {
                    layer_winograd(l, d, B, T, e, xin, xout, skip.data(),
                                   l < Lh ? cache.data() + static_cast<size_t>(l) * B * T * C2 : nullptr, mel,
                                   melb.data(), tid, nt, sc, bf16);
                    bar.wait();
                    std::swap(xin, xout);
                    continue;
                }
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
                        if (l < Lh)
                            std::memcpy(Z.data() + static_cast<size_t>(r) * C2,
                                        cache.data() + ((static_cast<size_t>(l) * B + b) * T + t) * C2, C2 * sizeof(float));
                    }
                    // Z = (bias + conditioner) + taps, in this order whether the first part is
                    // hoisted or computed here from the mel rows: the same bits either way
                    const float* bl = bd_.data() + static_cast<size_t>(l) * C2;
                    if (l < Lh) {
                        kr.gemm_packed(A.data(), n, K, K, wtl, C2, Z.data(), C2);
                    } else if (M > 0) {
                        kr.gemm_packed_set(mel + (static_cast<size_t>(b) * T + t0) * M, n, M, M, wcl, C2, bl, Z.data(), C2);
                        kr.gemm_packed(A.data(), n, K, K, wtl, C2, Z.data(), C2);
                    } else {
                        kr.gemm_packed_set(A.data(), n, K, K, wtl, C2, bl, Z.data(), C2);
                    }
                    for (int r = 0; r < n; ++r) {  // gate: sigmoid(first C) * tanh(last C)
                        const float* zr = Z.data() + static_cast<size_t>(r) * C2;
                        kr.gate_sigmoid_tanh(zr, zr + C, G.data() + static_cast<size_t>(r) * C, C);
                    }
                    kr.gemm_packed_set(G.data(), n, C, C, wol, C2, bol, O.data(), C2);
                    for (int r = 0; r < n; ++r) {  // residual and skip
                        const size_t row = (static_cast<size_t>(b) * T + t0 + r) * C;
                        residual_skip(O.data() + static_cast<size_t>(r) * C2, xin + row, xout + row, skip.data() + row, C,
                                      l == 0, rsqrt2);
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
                }
                kr.gemm_packed_set(G.data(), n, C, C, wsp_.data(), C, bsp_.data(), H.data(), C);
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
