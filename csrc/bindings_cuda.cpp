// The only PYBIND11_MODULE of the CUDA extension. Kernels take raw device pointers (uintptr_t),
// sizes and a cudaStream_t handle; the Python wrappers check dtype, device, contiguity and shapes.
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

namespace py = pybind11;

namespace agf {
cudaError_t launch_sample_softmax(const float* logits, const float* u, int64_t* out, int n, int classes,
                                  cudaStream_t stream);
cudaError_t launch_mulaw_decode(const int64_t* k, float* out, int64_t n, int mu, cudaStream_t stream);
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
}
