// audiogen_fast._C_cuda_emu: the CUDA persistent kernels compiled for the CPU and run by the fiber
// emulator (cuda/cuda_emu.h), so tests check their logic on machines without a GPU. Same
// arguments as the CUDA module's functions, with host pointers, plus the scheduler's seed.
#include <pybind11/pybind11.h>

#include <string>
#include <type_traits>

#include "cuda/wavenet_persistent.cuh"
#include "cuda/wavenet_persistent_bind.h"
#include "cuda/wavernn_persistent.cuh"
#include "cuda/wavernn_persistent_bind.h"
#include "cuda/handoff_bench.cuh"
#include "cuda/block_bench.cuh"

namespace py = pybind11;
using namespace agf;
using namespace agf::wnp;

namespace {

void run_rnn(const agf::wrp::Params& p, int wtype, int MT, int threads, size_t smem, uint64_t seed) {
    // the instance the GPU launcher picks (a plain function here)
    const agf::wrp::KernelFn k = agf::wrp::pick_kernel(wtype, MT, p.wsmem != 0);
    agf_emu::launch(static_cast<unsigned>(p.nchains * p.nblk), threads, smem, [&p, k]() { k(p); }, seed);
}

// Self-tests of the emulator's claims (tests/test_cuda_wavenet.py): returns the number of wrong
// values seen by the threads, or throws (deadlock).
int selftest(const std::string& kind, uint64_t seed) {
    int wrong = 0;
    unsigned long long flag = 0;
    const int threads = 64;
    agf_emu::launch(2, threads, threads * sizeof(int), [&]() {
        int* sm = static_cast<int*>(agf_smem());
        const int t = agf_tid(), lane = t & 31;
        if (kind == "deadlock") {
            if (t == 0 && agf_bid() == 0) agf_wait_eq(&flag, 1);  // nobody publishes it
        } else if (kind == "barrier" || kind == "race") {
            sm[t] = t + 1000 * agf_bid();
            if (kind == "barrier") agf_sync();
            wrong += sm[(t + 1) % threads] != (t + 1) % threads + 1000 * agf_bid();
        } else if (kind == "aligned" || kind == "misaligned") {  // a 16-byte vector load, then a pair
            float v[8];
            load8s(reinterpret_cast<float*>(sm) + (kind == "misaligned" && t == 5 ? 2 : 0), v);
            wrong += load_pair16(reinterpret_cast<const uint16_t*>(sm) + 2) == 0xdeadbeefu;  // any value: aligned
        } else if (kind == "shuffle") {
            wrong += agf_shfl_xor(lane, 1) != (lane ^ 1);
            wrong += agf_shfl_up(lane, 3) != (lane >= 3 ? lane - 3 : lane);
            wrong += agf_shfl_idx(static_cast<double>(lane), 5) != 5.0;
        }
    }, seed);
    return wrong;
}

}  // namespace

PYBIND11_MODULE(_C_cuda_emu, m) {
    m.doc() = "audiogen_fast CUDA kernels on the CPU emulator (tests)";
    m.def("wavenet_persistent_plan", [](const py::dict& d, size_t budget, int wtype) {
        Params p = params_from_dict(d);
        return plan_dict(p, budget, wtype);
    });
    m.def("selftest", &selftest);
    m.def("wavenet_persistent_shape_variant", [](const py::dict& d, int threads) {
        return agf::wnp::shape_variant(agf::wnp::params_from_dict(d), threads);
    });
    m.def("wavenet_persistent", [](const py::dict& d, size_t budget, int wtype, int threads, uint64_t seed) {
        Params p = params_from_dict(d);
        const size_t smem = plan(p, budget, weight_bytes(wtype));
        if (smem == 0)
            throw std::invalid_argument(p.dsmem ? "wavenet_persistent: the chain does not fit one 16-block cluster (use dsmem=0)"
                                                : "wavenet_persistent: the model needs more than 64 layer blocks");
        if (threads < 32 || threads > MAX_THREADS || threads % 32)
            throw std::invalid_argument("wavenet_persistent: threads must be a multiple of 32 in [32, 256]");
        py::gil_scoped_release nogil;
        // the instance the GPU launchers pick (a plain function here); a dsmem chain is one cluster
        const int mt = streams_variant(p.M), sh = shape_variant(p, threads);
        const KernelFn k = p.dsmem ? pick_kernel<true>(wtype, mt, sh) : pick_kernel<false>(wtype, mt, sh);
        agf_emu::launch(static_cast<unsigned>(p.nchains * (p.nblk + 1)), threads, smem, [&p, k]() { k(p); }, seed,
                        p.dsmem ? static_cast<unsigned>(p.nblk + 1) : 1u);
    });
    m.def("wavernn_persistent_plan", [](const py::dict& d, size_t budget, int wtype, int min_blocks, int max_blocks) {
        agf::wrp::Params p = agf::wrp::params_from_dict(d);
        return agf::wrp::plan_dict(p, budget, wtype, min_blocks, max_blocks);
    });
    m.def("wavernn_persistent", [](const py::dict& d, size_t budget, int wtype, int min_blocks, int max_blocks, int threads,
                                   uint64_t seed) {
        agf::wrp::Params p = agf::wrp::params_from_dict(d);
        if (max_blocks < 1) throw std::invalid_argument("wavernn_persistent: max_blocks must be >= 1");
        const size_t smem = agf::wrp::plan(p, budget, weight_bytes(wtype), min_blocks, max_blocks);
        if (threads < 32 || threads > agf::wrp::MAX_THREADS || threads % 32)
            throw std::invalid_argument("wavernn_persistent: threads must be a multiple of 32 in [32, 256]");
        py::gil_scoped_release nogil;
        run_rnn(p, wtype, p.M == 1 ? 1 : agf::wrp::MAX_STREAMS, threads, smem, seed);
    });
    m.def("handoff_bench", [](int nblk, int iters, int payload, int threads, std::uintptr_t mail, std::uintptr_t flags,
                              unsigned long long tag, std::uintptr_t result, uint64_t seed) {
        agf::hob::Params p = agf::hob::make_params(nblk, iters, payload, threads, mail, flags, tag, result);
        py::gil_scoped_release nogil;
        agf_emu::launch(static_cast<unsigned>(nblk), threads, payload * sizeof(float),
                        [&p]() { agf::hob::handoff_kernel(p); }, seed);
    });
    m.def("matvec_bench", [](std::uintptr_t w, std::uintptr_t x, std::uintptr_t y, std::uintptr_t ticks, int NU, int NR,
                             int ncols, int iters, int wtype, int threads, int fixed, uint64_t seed) {
        const agf::bb::MatvecParams p =
            agf::bb::make_matvec_params(w, x, y, ticks, NU, NR, ncols, iters, wtype, threads, fixed);
        const size_t smem = agf::bb::matvec_smem(p, wtype == 0 ? 4 : 2);
        py::gil_scoped_release nogil;
        agf::bb::matvec_dispatch(p, wtype, [&](auto wk, auto nr, auto shape) {
            agf_emu::launch(1, threads, smem, [&p]() {
                agf::bb::matvec_bench_kernel<decltype(wk), decltype(nr)::value, decltype(shape)::value>(p);
            }, seed);
        });
    });
    m.def("warp_sampler", [](std::uintptr_t logits, std::uintptr_t u, std::uintptr_t out, std::uintptr_t fell_back,
                             int rows, int n, uint64_t seed) {
        const agf::bb::SamplerParams p = agf::bb::make_sampler_params(logits, u, out, fell_back, rows, n);
        if (rows == 0) return;
        py::gil_scoped_release nogil;
        agf_emu::launch(static_cast<unsigned>(rows), 32, 0, [&p]() { agf::bb::warp_sampler_kernel(p); }, seed);
    });
}
