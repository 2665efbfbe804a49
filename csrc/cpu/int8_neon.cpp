// The int8 product (int8.h) on aarch64 with the dot-product extension (ARMv8.2 DotProd: SDOT,
// 16 s8 x s8 multiply-adds into 4 int32 lanes per instruction): AWS Graviton 2 / 3 / 4, Ampere
// Altra, NVIDIA Grace, Apple M1 and later. Same bits as the rule (tests compare it with the
// emulation bit for bit, under qemu where no such CPU is at hand).
//
// Why: without it those CPUs ran the int8 rule as the plain C++ emulation, which extracts every
// byte with shifts (several instructions per multiply-add), so dtype="int8", the option that
// makes WaveRNN's batch-1 step fast where weight bytes bound it, was the slowest choice there.
//
// SDOT multiplies signed bytes by signed bytes, the rule unsigned activations u (0..255) by
// signed weights q. With u' = u - 128 (a byte XOR 0x80, as s8):
//   sum_k u q - zp csum = sum_k u' q + (128 - zp) csum      (csum = sum_k q, exact integers),
// every term inside int32 for K <= kMaxK (|sum u' q| <= 128 * 127 * K, |(128 - zp) csum| <=
// 128 * 127 * K, and the total is the rule's own sum). The by-element form (SDOT ..., v.4b[lane])
// takes one X quad for all four columns of a weight vector, which is the panel layout: a panel
// row of 16 columns x 4 k is 4 vectors of 4 columns x 4 k; each X row's 16 bytes (4 quads) are
// loaded once and used by lane. Tiles of up to 4 rows x 16 columns (16 accumulators, 4 X and 4
// weight vectors: 24 of the 32 NEON registers).
//
// The activation quantiser is here too (NEON, the same bits as the plain one): in WaveRNN's
// batch-1 step each product quantises a 512-float row, and the plain code's ~8 scalar
// instructions an element would cost about what the products do.
// Compiled with -march=armv8.2-a+dotprod where the compiler takes it (setup.py, aarch64 only);
// elsewhere the entry point forwards to the emulation. Called only after int8::neon_available().
#include "cpu/int8.h"

#include <algorithm>
#include <cmath>
#include <memory>

#if defined(AGF_REQUIRE_DOTPROD) && !(defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD))
#error "AGF_REQUIRE_DOTPROD: this compile should have the dot-product kernel (tests/test_portable_build.py)"
#endif

#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
#include <arm_neon.h>

#define AGF_UNROLL _Pragma("GCC unroll 16")

namespace agf {
namespace int8 {
namespace {

// MR rows x one 16-column panel (ncols of them stored). xs: the rows' quads XOR 0x80808080
// (u - 128 as s8), K4 words a row.
template <int MR>
inline void tile(const uint32_t* xs, int K4, const uint32_t* w, const float* s, const int32_t* zp, const float* sw,
                 const int32_t* cs, const float* bias, bool set, float* Y, int64_t ldy, int ncols) {
    static_assert(MR >= 1 && MR <= 4, "tile: 4 accumulators a row, 16 at most");
    int32x4_t a[MR][4];
    AGF_UNROLL for (int b = 0; b < MR; ++b)
        AGF_UNROLL for (int g = 0; g < 4; ++g) a[b][g] = vdupq_n_s32(0);
    int j = 0;
    for (; j + 4 <= K4; j += 4) {  // 4 quads of k: one 16-byte load per row, used lane by lane
        int8x16_t xv[MR];
        AGF_UNROLL for (int b = 0; b < MR; ++b) xv[b] = vreinterpretq_s8_u32(vld1q_u32(xs + static_cast<size_t>(b) * K4 + j));
        const int8_t* wj = reinterpret_cast<const int8_t*>(w + static_cast<size_t>(j) * 16);
#define AGF_QUAD(L)                                                                             \
        AGF_UNROLL for (int g = 0; g < 4; ++g) {                                                \
            const int8x16_t wv = vld1q_s8(wj + 64 * (L) + 16 * g);                              \
            AGF_UNROLL for (int b = 0; b < MR; ++b) a[b][g] = vdotq_laneq_s32(a[b][g], wv, xv[b], (L)); \
        }
        AGF_QUAD(0) AGF_QUAD(1) AGF_QUAD(2) AGF_QUAD(3)
#undef AGF_QUAD
    }
    for (; j < K4; ++j) {  // the last 1-3 quads: each broadcast to all four lanes
        int8x16_t xv[MR];
        AGF_UNROLL for (int b = 0; b < MR; ++b) xv[b] = vreinterpretq_s8_u32(vdupq_n_u32(xs[static_cast<size_t>(b) * K4 + j]));
        const int8_t* wj = reinterpret_cast<const int8_t*>(w + static_cast<size_t>(j) * 16);
        AGF_UNROLL for (int g = 0; g < 4; ++g) {
            const int8x16_t wv = vld1q_s8(wj + 16 * g);
            AGF_UNROLL for (int b = 0; b < MR; ++b) a[b][g] = vdotq_laneq_s32(a[b][g], wv, xv[b], 0);
        }
    }
    AGF_UNROLL for (int b = 0; b < MR; ++b) {
        const float32x4_t sb = vdupq_n_f32(s[b]);
        const int32x4_t corr = vdupq_n_s32(128 - zp[b]);
        float yt[16];
        AGF_UNROLL for (int g = 0; g < 4; ++g) {
            // the rule's sum, then y = fma(float(acc), s * sw, base)
            const int32x4_t acc = vmlaq_s32(a[b][g], corr, vld1q_s32(cs + 4 * g));
            const float32x4_t sc = vmulq_f32(sb, vld1q_f32(sw + 4 * g));
            float32x4_t base;
            if (ncols >= 4 * g + 4) {
                base = set ? (bias ? vld1q_f32(bias + 4 * g) : vdupq_n_f32(0.0f)) : vld1q_f32(Y + b * ldy + 4 * g);
            } else {  // a partial group: the columns past N are neither read nor written
                float tmp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
                for (int c = 4 * g; c < ncols; ++c) tmp[c - 4 * g] = set ? (bias ? bias[c] : 0.0f) : Y[b * ldy + c];
                base = vld1q_f32(tmp);
            }
            vst1q_f32(yt + 4 * g, vfmaq_f32(base, vcvtq_f32_s32(acc), sc));
        }
        if (ncols == 16) {
            AGF_UNROLL for (int g = 0; g < 4; ++g) vst1q_f32(Y + b * ldy + 4 * g, vld1q_f32(yt + 4 * g));
        } else {
            for (int c = 0; c < ncols; ++c) Y[b * ldy + c] = yt[c];
        }
    }
}

}  // namespace

bool neon_compiled() { return true; }

// The activation rule (int8.h) 16 floats at a time: FCVTNS rounds to nearest even and saturates as
// the plain code's nearbyint + conversion does here (fcvtzs); + zp wraps as the plain int32 add;
// the two saturating narrows clamp to 0..255. The 1-15 elements left: the plain code, element by
// element. Bytes stored in element order: the little-endian quads of the layout.
void quantize_rows_in_range_neon(const float* X, int rows, int K, int64_t ldx, const float* lo, const float* hi,
                                 uint32_t* out, int64_t ldo, float* s, int32_t* zp) {
    const int K4 = quads(K);
    for (int r = 0; r < rows; ++r) {
        const float* x = X + r * ldx;
        uint32_t* o = out + r * ldo;
        float inv;
        row_params(lo[r], hi[r], &s[r], &inv, &zp[r]);
        std::fill(o, o + K4, 0u);
        if (s[r] == 0.0f) continue;
        const float32x4_t vinv = vdupq_n_f32(inv);
        const int32x4_t vzp = vdupq_n_s32(zp[r]);
        auto q4 = [&](const float* p) { return vaddq_s32(vcvtnq_s32_f32(vmulq_f32(vld1q_f32(p), vinv)), vzp); };
        int k = 0;
        for (; k + 16 <= K; k += 16) {
            const uint16x8_t h0 = vcombine_u16(vqmovun_s32(q4(x + k)), vqmovun_s32(q4(x + k + 4)));
            const uint16x8_t h1 = vcombine_u16(vqmovun_s32(q4(x + k + 8)), vqmovun_s32(q4(x + k + 12)));
            vst1q_u8(reinterpret_cast<uint8_t*>(o + k / 4), vcombine_u8(vqmovn_u16(h0), vqmovn_u16(h1)));
        }
        quantize_elements(x, k, K, inv, zp[r], o);  // the rest, element by element
    }
}

void quantize_rows_neon(const float* X, int rows, int K, int64_t ldx, uint32_t* out, int64_t ldo, float* s,
                        int32_t* zp) {
    for (int r = 0; r < rows; ++r) {
        const float* x = X + r * ldx;
        // the range: min / max are exact in any order; FMINNM / FMAXNM skip a NaN as std::min /
        // max do here (a -0 may come out where the plain code keeps +0: the same s and zp)
        float32x4_t vlo = vdupq_n_f32(0.0f), vhi = vdupq_n_f32(0.0f);
        int k = 0;
        for (; k + 4 <= K; k += 4) {
            const float32x4_t v = vld1q_f32(x + k);
            vlo = vminnmq_f32(vlo, v), vhi = vmaxnmq_f32(vhi, v);
        }
        float lo = vminnmvq_f32(vlo), hi = vmaxnmvq_f32(vhi);
        for (; k < K; ++k) lo = std::min(lo, x[k]), hi = std::max(hi, x[k]);
        quantize_rows_in_range_neon(x, 1, K, ldx, &lo, &hi, out + r * ldo, ldo, s + r, zp + r);
    }
}

void gemm_neon(const uint32_t* X, int rows, int64_t ldx, const float* s, const int32_t* zp, const Weights& W,
               const float* bias, bool set, float* Y, int64_t ldy) {
    if (rows <= 0 || W.N <= 0) return;
    const int N = W.N, K4 = quads(W.K);
    // the rows as u - 128 (s8), once per call (a plain array, not a std::vector: a library
    // template instantiated in this file would be compiled for ARMv8.2 and could be the copy the
    // linker keeps for the whole module)
    thread_local std::unique_ptr<uint32_t[]> xbuf;
    thread_local size_t xcap = 0;
    const size_t need = static_cast<size_t>(rows) * K4;
    if (xcap < need) xbuf.reset(new uint32_t[need]), xcap = need;
    uint32_t* xs = xbuf.get();
    for (int r = 0; r < rows; ++r)
        for (int j = 0; j < K4; ++j) xs[static_cast<size_t>(r) * K4 + j] = X[r * ldx + j] ^ 0x80808080u;
    for (int p = 0; p * 16 < N; ++p) {
        const uint32_t* w = W.w.data() + static_cast<size_t>(p) * K4 * 16;
        const int nc = std::min(16, N - 16 * p);
        const float* sw = W.scale.data() + 16 * p;
        const int32_t* cs = W.csum.data() + 16 * p;
        const float* bp = bias ? bias + 16 * p : nullptr;
        float* y = Y + 16 * p;
        int r = 0;
        for (; r + 4 <= rows; r += 4)
            tile<4>(xs + static_cast<size_t>(r) * K4, K4, w, s + r, zp + r, sw, cs, bp, set, y + r * ldy, ldy, nc);
        const uint32_t* xr = xs + static_cast<size_t>(r) * K4;
        switch (rows - r) {
            case 3: tile<3>(xr, K4, w, s + r, zp + r, sw, cs, bp, set, y + r * ldy, ldy, nc); break;
            case 2: tile<2>(xr, K4, w, s + r, zp + r, sw, cs, bp, set, y + r * ldy, ldy, nc); break;
            case 1: tile<1>(xr, K4, w, s + r, zp + r, sw, cs, bp, set, y + r * ldy, ldy, nc); break;
            default: break;
        }
    }
}

}  // namespace int8
}  // namespace agf

#else  // no dot-product instructions in this build: the emulation (never chosen: neon_compiled() is false)

namespace agf {
namespace int8 {
bool neon_compiled() { return false; }
void quantize_rows_neon(const float* X, int rows, int K, int64_t ldx, uint32_t* out, int64_t ldo, float* s,
                        int32_t* zp) {
    quantize_rows(X, rows, K, ldx, out, ldo, s, zp);
}
void quantize_rows_in_range_neon(const float* X, int rows, int K, int64_t ldx, const float* lo, const float* hi,
                                 uint32_t* out, int64_t ldo, float* s, int32_t* zp) {
    quantize_rows_in_range(X, rows, K, ldx, lo, hi, out, ldo, s, zp);
}
void gemm_neon(const uint32_t* X, int rows, int64_t ldx, const float* s, const int32_t* zp, const Weights& W,
               const float* bias, bool set, float* Y, int64_t ldy) {
    gemm_emulated(X, rows, ldx, s, zp, W, bias, set, Y, ldy);
}
}  // namespace int8
}  // namespace agf

#endif
