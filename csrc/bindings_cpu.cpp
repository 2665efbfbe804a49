// The only PYBIND11_MODULE of the CPU extension. Functions take raw pointers (uintptr_t) and
// sizes: the Python wrappers in audiogen_fast/_cpp.py check dtype, contiguity and shapes and
// keep the arrays alive; here we check sizes again so a bad call raises instead of reading
// out of bounds.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "cpu/cpu_features.h"
#include "cpu/sampling.h"

namespace py = pybind11;

namespace {

template <typename T>
T* ptr(std::uintptr_t p) { return reinterpret_cast<T*>(p); }

void require(bool ok, const std::string& msg) {
    if (!ok) throw std::invalid_argument(msg);
}

void check_ptr(std::uintptr_t p, const char* name) {
    require(p != 0, std::string(name) + " is a null pointer");
}

}  // namespace

PYBIND11_MODULE(_C_cpu, m) {
    m.doc() = "audiogen_fast C++ CPU kernels";

    m.def("cpu_features", []() {
        const auto& f = agf::cpu_features();
        py::dict d;
        d["avx2"] = f.avx2;
        d["fma"] = f.fma;
        d["avx512f"] = f.avx512f;
        return d;
    });

    m.def("mulaw_encode", [](std::uintptr_t x, std::uintptr_t out, int64_t n, int mu) {
        require(n >= 0, "mulaw_encode: n must be >= 0");
        require(mu >= 1 && mu <= 65535, "mulaw_encode: mu must be in [1, 65535]");
        if (n == 0) return;
        check_ptr(x, "x"); check_ptr(out, "out");
        const float* xp = ptr<const float>(x);
        int64_t* op = ptr<int64_t>(out);
        py::gil_scoped_release nogil;
        for (int64_t i = 0; i < n; ++i) op[i] = agf::mulaw_encode(xp[i], mu);
    }, py::arg("x"), py::arg("out"), py::arg("n"), py::arg("mu"));

    m.def("mulaw_decode", [](std::uintptr_t k, std::uintptr_t out, int64_t n, int mu) {
        require(n >= 0, "mulaw_decode: n must be >= 0");
        require(mu >= 1 && mu <= 65535, "mulaw_decode: mu must be in [1, 65535]");
        if (n == 0) return;
        check_ptr(k, "k"); check_ptr(out, "out");
        const int64_t* kp = ptr<const int64_t>(k);
        float* op = ptr<float>(out);
        for (int64_t i = 0; i < n; ++i)
            require(kp[i] >= 0 && kp[i] <= mu, "mulaw_decode: class index out of range [0, mu]");
        py::gil_scoped_release nogil;
        for (int64_t i = 0; i < n; ++i) op[i] = agf::mulaw_decode(kp[i], mu);
    }, py::arg("k"), py::arg("out"), py::arg("n"), py::arg("mu"));

    // logits [n, c] fp32, u [n] fp32, out [n] int64
    m.def("sample_softmax", [](std::uintptr_t logits, std::uintptr_t u, std::uintptr_t out, int64_t n, int64_t c) {
        require(n >= 0 && c >= 1, "sample_softmax: need n >= 0 and classes >= 1");
        if (n == 0) return;
        check_ptr(logits, "logits"); check_ptr(u, "u"); check_ptr(out, "out");
        const float* lp = ptr<const float>(logits);
        const float* up = ptr<const float>(u);
        int64_t* op = ptr<int64_t>(out);
        py::gil_scoped_release nogil;
        for (int64_t i = 0; i < n; ++i) op[i] = agf::sample_softmax(lp + i * c, static_cast<int>(c), up[i]);
    }, py::arg("logits"), py::arg("u"), py::arg("out"), py::arg("n"), py::arg("classes"));

    // params [n, 3*n_mix], u [n, 2], out [n]
    m.def("sample_mol", [](std::uintptr_t params, std::uintptr_t u, std::uintptr_t out, int64_t n, int64_t n_mix,
                           float log_scale_min) {
        require(n >= 0 && n_mix >= 1, "sample_mol: need n >= 0 and n_mix >= 1");
        if (n == 0) return;
        check_ptr(params, "params"); check_ptr(u, "u"); check_ptr(out, "out");
        const float* pp = ptr<const float>(params);
        const float* up = ptr<const float>(u);
        float* op = ptr<float>(out);
        py::gil_scoped_release nogil;
        for (int64_t i = 0; i < n; ++i)
            op[i] = agf::sample_mol(pp + i * 3 * n_mix, static_cast<int>(n_mix), up[2 * i], up[2 * i + 1], log_scale_min);
    }, py::arg("params"), py::arg("u"), py::arg("out"), py::arg("n"), py::arg("n_mix"), py::arg("log_scale_min"));

    // params [n, 2], z [n], out [n]
    m.def("sample_gaussian", [](std::uintptr_t params, std::uintptr_t z, std::uintptr_t out, int64_t n,
                                float log_scale_min) {
        require(n >= 0, "sample_gaussian: need n >= 0");
        if (n == 0) return;
        check_ptr(params, "params"); check_ptr(z, "z"); check_ptr(out, "out");
        const float* pp = ptr<const float>(params);
        const float* zp = ptr<const float>(z);
        float* op = ptr<float>(out);
        py::gil_scoped_release nogil;
        for (int64_t i = 0; i < n; ++i) op[i] = agf::sample_gaussian(pp + 2 * i, zp[i], log_scale_min);
    }, py::arg("params"), py::arg("z"), py::arg("out"), py::arg("n"), py::arg("log_scale_min"));
}
