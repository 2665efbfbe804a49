// Shared sampling primitives for every CPU path (and the model for the GPU ones).
//
// These implement the noise contract in shared/DESIGN.md exactly as the eager reference
// (audiogen_fast/sampling.py) does, so a backend that feeds the same logits and the same
// uniforms picks the same sample:
//   * softmax (mu-law) outputs: the smallest class k whose cumulative probability, accumulated
//     in class order, exceeds u. Computed in double as  cumsum(exp(l - max)) > u * sum(exp(l - max))
//     so rounding differences between implementations are ~1e-16, far below the ~1e-7 differences
//     that different fp32 matmul orders put into the logits themselves.
//   * mixture of logistics: u1 picks the component (same rule over the mixture logits),
//     x = mu + exp(max(log_s, log_scale_min)) * (log u2 - log(1 - u2)), u2 clamped to
//     [1e-5, 1 - 1e-5], x clipped to [-1, 1]; computed in double, returned as float.
//   * single Gaussian: x = mean + exp(max(log_std, log_scale_min)) * z, clipped to [-1, 1].
//   * mu-law codec with mu = classes - 1: encode rounds half up, both computed in double.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cpu/kernels.h"

namespace agf {

inline int mulaw_encode(float x, int mu) {
    double xd = std::min(1.0, std::max(-1.0, static_cast<double>(x)));
    double y = std::copysign(std::log1p(mu * std::fabs(xd)) / std::log1p(static_cast<double>(mu)), xd);
    int k = static_cast<int>(std::floor((y + 1.0) * 0.5 * mu + 0.5));
    return std::min(mu, std::max(0, k));
}

inline float mulaw_decode(int64_t k, int mu) {
    double y = 2.0 * static_cast<double>(k) / mu - 1.0;
    double x = std::copysign((std::pow(1.0 + mu, std::fabs(y)) - 1.0) / mu, y);
    return static_cast<float>(x);
}

// max(init, x[0], ..., x[n-1]) as a chain of std::max (a NaN x is skipped), with 8 running maxima
// so the compiler vectorises it: a max has no rounding, so any order gives the same value. (The
// one-accumulator loop is a chain of dependent maxss: 3% of W1's multi-stream int8 loop.)
inline float max_of(const float* x, int n, float init) {
    float m[8] = {init, init, init, init, init, init, init, init};
    int k = 0;
    for (; k + 8 <= n; k += 8)
        for (int u = 0; u < 8; ++u) m[u] = std::max(m[u], x[k + u]);
    for (; k < n; ++k) m[0] = std::max(m[0], x[k]);
    float r = m[0];
    for (int u = 1; u < 8; ++u) r = std::max(r, m[u]);
    return r;
}

// logits: n contiguous floats; u in [0, 1).
inline int sample_softmax(const float* logits, int n, float u) {
    float m = logits[0];
    for (int k = 1; k < n; ++k) m = std::max(m, logits[k]);
    // one exp per class when the scratch fits (n <= 1024), two passes otherwise
    double e[1024];
    const bool keep = n <= 1024;
    double s = 0.0;
    for (int k = 0; k < n; ++k) {
        const double v = std::exp(static_cast<double>(logits[k]) - m);
        if (keep) e[k] = v;
        s += v;
    }
    const double target = static_cast<double>(u) * s;
    double c = 0.0;
    for (int k = 0; k < n; ++k) {
        c += keep ? e[k] : std::exp(static_cast<double>(logits[k]) - m);
        if (c > target) return k;
    }
    // Unreachable for u < 1 (target < s == c); keep a valid class with positive mass anyway.
    for (int k = n - 1; k > 0; --k)
        if (logits[k] > -INFINITY) return k;
    return 0;
}

// sample_softmax's result, mostly without its n double-precision exps (2-4 us per sample for
// 256 classes, on the critical path of every autoregressive step): the same rule in fp32 with
// vectorised exps, accepted only when u * sum lies more than kSoftmaxMargin * sum away from both
// cumulative sums around the chosen class; otherwise the double-precision rule decides. The fp32
// cumulative sums differ from the double ones by at most ~2e-5 * sum (exp error <= 3e-7 relative
// plus <= 256 roundings of a running sum; the target's own rounding is ~1e-7), well inside the
// margin, so the answer always equals sample_softmax's. The fallback runs with probability
// ~2 * margin (one draw in ~5,000 for a smooth distribution).
constexpr float kSoftmaxMargin = 1e-4f;

inline int sample_softmax_fast(const Kernels& kr, const float* logits, int n, float u) {
    if (n > 1024) return sample_softmax(logits, n, u);
    const float m = max_of(logits + 1, n - 1, logits[0]);
    float e[1024];
    const float s = kr.exp_sum(logits, n, m, e);
    const float target = u * s, margin = kSoftmaxMargin * s;
    float c = 0.0f, prev = 0.0f;
    for (int k = 0; k < n; ++k) {
        prev = c;
        c += e[k];
        if (c > target) {
            if (c - target > margin && target - prev > margin) return k;
            break;
        }
    }
    return sample_softmax(logits, n, u);  // near a boundary, non-finite logits, or no class found
}

// params: [3 * n_mix] = logit_probs | means | log_scales.
inline float sample_mol(const float* params, int n_mix, float u1, float u2, float log_scale_min) {
    const int k = sample_softmax(params, n_mix, u1);
    const double mean = params[n_mix + k];
    const double log_s = std::max(static_cast<double>(params[2 * n_mix + k]), static_cast<double>(log_scale_min));
    const double uu = std::min(1.0 - 1e-5, std::max(1e-5, static_cast<double>(u2)));
    double x = mean + std::exp(log_s) * (std::log(uu) - std::log(1.0 - uu));
    x = std::min(1.0, std::max(-1.0, x));
    return static_cast<float>(x);
}

// params: [2] = mean | log_std; z standard normal.
inline float sample_gaussian(const float* params, float z, float log_scale_min) {
    const double log_s = std::max(static_cast<double>(params[1]), static_cast<double>(log_scale_min));
    double x = static_cast<double>(params[0]) + std::exp(log_s) * static_cast<double>(z);
    x = std::min(1.0, std::max(-1.0, x));
    return static_cast<float>(x);
}

}  // namespace agf
