// The only PYBIND11_MODULE of the CUDA extension. Kernels take raw device pointers (uintptr_t),
// sizes and a cudaStream_t handle; the Python wrappers check dtype, device, contiguity and shapes.
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

namespace py = pybind11;

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
}
