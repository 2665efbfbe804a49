// The only PYBIND11_MODULE of the CUDA extension. Kernels take raw device pointers (uintptr_t),
// sizes and a cudaStream_t handle; the Python wrappers check dtype, device, contiguity and shapes.
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include "cuda/wavenet_persistent_bind.h"
#include "cuda/wavernn_persistent_bind.h"
#include "cuda/handoff_params.h"
#include "cuda/block_bench_params.h"

#include <stdexcept>
#include <string>

namespace py = pybind11;

namespace agf {
cudaError_t launch_sample_softmax(const float* logits, const float* u, int64_t* out, int n, int classes,
                                  cudaStream_t stream);
cudaError_t launch_mulaw_decode(const int64_t* k, float* out, int64_t n, int mu, cudaStream_t stream);
namespace wnp {
cudaError_t max_resident_blocks(int wtype, int MT, int threads, size_t smem, int* out);
cudaError_t max_active_clusters(const Params& p, int wtype, int MT, int threads, size_t smem, int* out);
cudaError_t launch(const Params& p, int wtype, int MT, int threads, size_t smem, cudaStream_t stream);
}  // namespace wnp
namespace hob {
cudaError_t launch(const Params& p, int threads, cudaStream_t stream);
cudaError_t launch_empty(int n, cudaStream_t stream);
}  // namespace hob
namespace bb {
cudaError_t launch_matvec(const MatvecParams& p, int wtype, int threads, cudaStream_t stream);
cudaError_t launch_sampler(const SamplerParams& p, int rows, cudaStream_t stream);
}  // namespace bb
namespace wrp {
cudaError_t max_resident_blocks(int wtype, int MT, int threads, size_t smem, int* out);
cudaError_t launch(const Params& p, int wtype, int MT, int threads, size_t smem, cudaStream_t stream);
}  // namespace wrp
}  // namespace agf

namespace {

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

}  // namespace

PYBIND11_MODULE(_C_cuda, m) {
    m.doc() = "audiogen_fast CUDA kernels";
    m.def("device_count", []() {
        int n = 0;
        cudaError_t e = cudaGetDeviceCount(&n);
        return e == cudaSuccess ? n : 0;
    });
    m.def("device_properties", [](int dev) {
        cudaDeviceProp p;
        check(cudaGetDeviceProperties(&p, dev), "cudaGetDeviceProperties");
        py::dict d;
        d["name"] = std::string(p.name);
        d["sm_count"] = p.multiProcessorCount;
        d["cc"] = std::to_string(p.major) + "." + std::to_string(p.minor);
        d["l2_bytes"] = p.l2CacheSize;
        d["smem_per_block_optin"] = static_cast<long long>(p.sharedMemPerBlockOptin);
        d["smem_per_sm"] = static_cast<long long>(p.sharedMemPerMultiprocessor);
        d["regs_per_sm"] = p.regsPerMultiprocessor;
        return d;
    }, py::arg("device") = 0);

    // Raw device pointers + sizes + the caller's stream (audiogen_fast/_cuda.py checks the tensors).
    m.def("sample_softmax", [](std::uintptr_t logits, std::uintptr_t u, std::uintptr_t out, int n, int classes,
                               std::uintptr_t stream) {
        if (n < 0 || classes < 1) throw std::invalid_argument("sample_softmax: need n >= 0 and classes >= 1");
        if (n > 0 && (!logits || !u || !out)) throw std::invalid_argument("sample_softmax: null pointer");
        check(agf::launch_sample_softmax(reinterpret_cast<const float*>(logits), reinterpret_cast<const float*>(u),
                                         reinterpret_cast<int64_t*>(out), n, classes,
                                         reinterpret_cast<cudaStream_t>(stream)), "sample_softmax launch");
    });
    m.def("mulaw_decode", [](std::uintptr_t k, std::uintptr_t out, int64_t n, int mu, std::uintptr_t stream) {
        if (n < 0 || mu < 1) throw std::invalid_argument("mulaw_decode: need n >= 0 and mu >= 1");
        if (n > 0 && (!k || !out)) throw std::invalid_argument("mulaw_decode: null pointer");
        check(agf::launch_mulaw_decode(reinterpret_cast<const int64_t*>(k), reinterpret_cast<float*>(out), n, mu,
                                       reinterpret_cast<cudaStream_t>(stream)), "mulaw_decode launch");
    });

    // WaveNet persistent kernel (csrc/cuda/wavenet_persistent.cuh); args: see audiogen_fast/ops/wavenet_persistent.py
    m.def("wavenet_persistent_plan", [](const py::dict& d, size_t budget, int wtype) {
        agf::wnp::Params p = agf::wnp::params_from_dict(d);
        return agf::wnp::plan_dict(p, budget, wtype);
    });
    m.def("wavenet_persistent_shape_variant", [](const py::dict& d, int threads) {
        return agf::wnp::shape_variant(agf::wnp::params_from_dict(d), threads);
    });
    m.def("wavenet_persistent_max_blocks", [](int wtype, int M, int threads, size_t smem) {
        int n = 0;
        agf::wnp::weight_bytes(wtype);
        check(agf::wnp::max_resident_blocks(wtype, agf::wnp::streams_variant(M), threads, smem, &n), "wavenet_persistent occupancy");
        return n;
    });
    m.def("wavenet_persistent_max_clusters", [](const py::dict& d, size_t budget, int wtype, int threads) {
        agf::wnp::Params p = agf::wnp::params_from_dict(d);
        const size_t smem = agf::wnp::plan(p, budget, agf::wnp::weight_bytes(wtype));
        if (smem == 0 || !p.dsmem) throw std::invalid_argument("wavenet_persistent_max_clusters: needs a dsmem plan that fits a cluster");
        int n = 0;
        check(agf::wnp::max_active_clusters(p, wtype, agf::wnp::streams_variant(p.M), threads, smem, &n), "wavenet_persistent cluster occupancy");
        return n;
    });
    m.def("wavenet_persistent", [](const py::dict& d, size_t budget, int wtype, int threads, std::uintptr_t stream) {
        agf::wnp::Params p = agf::wnp::params_from_dict(d);
        const size_t smem = agf::wnp::plan(p, budget, agf::wnp::weight_bytes(wtype));
        if (smem == 0)
            throw std::invalid_argument(p.dsmem ? "wavenet_persistent: the chain does not fit one 16-block cluster (use dsmem=0)"
                                                : "wavenet_persistent: the model needs more than 64 layer blocks");
        if (threads < 32 || threads > agf::wnp::MAX_THREADS || threads % 32)
            throw std::invalid_argument("wavenet_persistent: threads must be a multiple of 32 in [32, 256]");
        check(agf::wnp::launch(p, wtype, agf::wnp::streams_variant(p.M), threads, smem, reinterpret_cast<cudaStream_t>(stream)),
              "wavenet_persistent launch");
    });

    // WaveRNN persistent kernel (csrc/cuda/wavernn_persistent.cuh); args: see audiogen_fast/ops/wavernn_persistent.py
    m.def("wavernn_persistent_plan", [](const py::dict& d, size_t budget, int wtype, int min_blocks, int max_blocks) {
        agf::wrp::Params p = agf::wrp::params_from_dict(d);
        return agf::wrp::plan_dict(p, budget, wtype, min_blocks, max_blocks);
    });
    m.def("wavernn_persistent_max_blocks", [](int wtype, int M, int threads, size_t smem) {
        int n = 0;
        agf::wnp::weight_bytes(wtype);
        check(agf::wrp::max_resident_blocks(wtype, M > 1 ? agf::wrp::MAX_STREAMS : 1, threads, smem, &n),
              "wavernn_persistent occupancy");
        return n;
    });
    m.def("wavernn_persistent", [](const py::dict& d, size_t budget, int wtype, int min_blocks, int max_blocks, int threads,
                                   std::uintptr_t stream) {
        agf::wrp::Params p = agf::wrp::params_from_dict(d);
        if (max_blocks < 1) throw std::invalid_argument("wavernn_persistent: max_blocks must be >= 1");
        const size_t smem = agf::wrp::plan(p, budget, agf::wnp::weight_bytes(wtype), min_blocks, max_blocks);
        if (threads < 32 || threads > agf::wrp::MAX_THREADS || threads % 32)
            throw std::invalid_argument("wavernn_persistent: threads must be a multiple of 32 in [32, 256]");
        check(agf::wrp::launch(p, wtype, p.M > 1 ? agf::wrp::MAX_STREAMS : 1, threads, smem,
                               reinterpret_cast<cudaStream_t>(stream)), "wavernn_persistent launch");
    });

    // floors (benchmarks/NOTES_GPU.md): a token round a ring of blocks, and empty launches
    m.def("handoff_bench", [](int nblk, int iters, int payload, int threads, std::uintptr_t mail, std::uintptr_t flags,
                              unsigned long long tag, std::uintptr_t result, std::uintptr_t stream) {
        agf::hob::Params p = agf::hob::make_params(nblk, iters, payload, threads, mail, flags, tag, result);
        check(agf::hob::launch(p, threads, reinterpret_cast<cudaStream_t>(stream)), "handoff_bench launch");
    });
    // a block-wide product + barrier, `iters` times in one block (block_bench.cuh)
    m.def("matvec_bench", [](std::uintptr_t w, std::uintptr_t x, std::uintptr_t y, std::uintptr_t ticks, int NU, int NR,
                             int ncols, int iters, int wtype, int threads, int fixed, std::uintptr_t stream) {
        const agf::bb::MatvecParams p =
            agf::bb::make_matvec_params(w, x, y, ticks, NU, NR, ncols, iters, wtype, threads, fixed);
        check(agf::bb::launch_matvec(p, wtype, threads, reinterpret_cast<cudaStream_t>(stream)), "matvec_bench launch");
    });
    // one warp per row: the persistent kernels' fp32-first softmax sampler (kernel_common.cuh)
    m.def("warp_sampler", [](std::uintptr_t logits, std::uintptr_t u, std::uintptr_t out, std::uintptr_t fell_back,
                             int rows, int n, std::uintptr_t stream) {
        const agf::bb::SamplerParams p = agf::bb::make_sampler_params(logits, u, out, fell_back, rows, n);
        check(agf::bb::launch_sampler(p, rows, reinterpret_cast<cudaStream_t>(stream)), "warp_sampler launch");
    });
    m.def("empty_launches", [](int n, std::uintptr_t stream) {
        check(agf::hob::launch_empty(n, reinterpret_cast<cudaStream_t>(stream)), "empty launches");
    });
}
