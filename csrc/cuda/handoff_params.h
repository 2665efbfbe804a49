// Parameters of the hand-off ring microbenchmark (handoff_bench.cuh), plain C++ for the bindings.
#pragma once
#include <cstdint>
#include <stdexcept>

namespace agf {
namespace hob {

struct Params {
    int nblk, iters, payload;     // blocks in the ring, rounds, floats per message
    float* mail;                  // [nblk][payload]
    unsigned long long* flags;    // [nblk] (inbox of block r), spaced 16 words apart
    unsigned long long tag;
    float* result;                // [payload] the token after the last round
};

inline Params make_params(int nblk, int iters, int payload, int threads, std::uintptr_t mail, std::uintptr_t flags,
                          unsigned long long tag, std::uintptr_t result) {
    if (nblk < 2 || iters < 1 || payload < 1 || payload > 8192 || threads < 32 || threads > 256 || threads % 32)
        throw std::invalid_argument("handoff_bench: need nblk >= 2, iters >= 1, 1 <= payload <= 8192, threads a multiple of 32 <= 256");
    if (!mail || !flags || !result) throw std::invalid_argument("handoff_bench: null pointer");
    Params p{};
    p.nblk = nblk;
    p.iters = iters;
    p.payload = payload;
    p.mail = reinterpret_cast<float*>(mail);
    p.flags = reinterpret_cast<unsigned long long*>(flags);
    p.tag = tag;
    p.result = reinterpret_cast<float*>(result);
    return p;
}

}  // namespace hob
}  // namespace agf
