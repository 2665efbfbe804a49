// The only PYBIND11_MODULE of the CPU extension. Functions take raw pointers (uintptr_t) and
// sizes: the Python wrappers in audiogen_fast/_cpp.py check dtype, contiguity and shapes and
// keep the arrays alive; here we check sizes again so a bad call raises instead of reading
// out of bounds.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/bf16.h"
#include "cpu/int8.h"
#include "cpu/cpu_features.h"
#include "cpu/diffwave.h"
#include "cpu/kernels.h"
#include "cpu/pack.h"
#include "cpu/sampling.h"
#include "cpu/team.h"
#include "cpu/wavenet.h"
#include "cpu/wavernn.h"

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

// the arguments of the test-only product bindings (bf16_gemm, int8_gemm)
// impl: "native" (the AVX-512 kernel), "avx2", "neon" (aarch64 DotProd: int8 only, neon_ok),
// "emulated" or "auto" (what the loops use)
void check_impl(const std::string& name, const std::string& impl, bool auto_ok, bool native_ok, const char* isa,
                bool neon_ok = false) {
    require(impl == "native" || impl == "avx2" || impl == "neon" || impl == "emulated" || (auto_ok && impl == "auto"),
            name + (auto_ok ? ": impl is native, avx2, neon, emulated or auto" : ": impl is native, avx2, neon or emulated"));
    require(impl != "native" || native_ok, name + ": this CPU (or build) has no " + isa);
    require(impl != "avx2" || agf::avx2_available(), name + ": this CPU (or build) has no AVX2 + FMA");
    require(impl != "neon" || neon_ok, name + ": this CPU (or build) has no aarch64 dot-product kernel");
}

// the implementation `impl` names (check_impl first): "auto" is the loops' choice
template <typename Fn>
Fn by_impl(const std::string& impl, Fn native, Fn avx2, Fn emulated, Fn chosen, Fn neon = nullptr) {
    return impl == "native" ? native : impl == "avx2" ? avx2 : impl == "neon" ? neon : impl == "emulated" ? emulated : chosen;
}

void check_product_args(const std::string& name, int rows, int K, int N, const std::string& impl, bool native_ok,
                        const char* isa, std::uintptr_t x, std::uintptr_t w, std::uintptr_t y, bool neon_ok = false) {
    require(rows >= 0 && K >= 1 && N >= 1, name + ": need rows >= 0, K >= 1, N >= 1");
    check_impl(name, impl, true, native_ok, isa, neon_ok);
    check_ptr(x, "x"); check_ptr(w, "w"); check_ptr(y, "y");
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
        d["avx512bf16"] = agf::bf16::native_available();  // and the build has the kernel
        d["avx512vnni"] = agf::int8::native_available();  // likewise
        d["asimddp"] = agf::int8::neon_available();       // aarch64 dot products, and the kernel built
        return d;
    });

    m.def("float_to_half", [](float f) { return agf::float_to_half(f); });
    m.def("half_to_float", [](uint16_t h) { return agf::half_to_float(h); });
    m.def("kernels_name", []() { return std::string(agf::kernels().name); });
    // The gate kernels alone, for tests: z = sigmoid(a) * tanh(b) ("st") or tanh(a) * sigmoid(b)
    // ("ts"), with the kernel set in use ("auto"), the AVX2 one ("avx2", if this CPU runs it) or
    // the portable one
    m.def("gate", [](std::uintptr_t a, std::uintptr_t b, std::uintptr_t z, int n, const std::string& kind,
                     const std::string& impl) {
        require(n >= 0, "gate: n must be >= 0");
        require(kind == "st" || kind == "ts", "gate: kind is st or ts");
        require(impl == "auto" || impl == "avx2" || impl == "portable", "gate: impl is auto, avx2 or portable");
        require(impl != "avx2" || agf::avx2_available(), "gate: this CPU (or build) has no AVX2 + FMA");
        check_ptr(a, "a"); check_ptr(b, "b"); check_ptr(z, "z");
        const agf::Kernels& k = impl == "auto" ? agf::kernels() : impl == "avx2" ? agf::avx2_kernels() : agf::portable_kernels();
        (kind == "st" ? k.gate_sigmoid_tanh : k.gate_tanh_sigmoid)(ptr<const float>(a), ptr<const float>(b), ptr<float>(z), n);
    });

    // The fp32 products of one kernel set alone, for tests: W [K, N] (row-major) packed here as the
    // loops pack it, then kind "packed" (16-column panels, Y += X W), "packed_set" (Y = bias + X W;
    // bias may be null), "panels" (64-column panels, Y += X W) or "panels_h" (the same with W stored
    // as IEEE half); X [rows, K], Y [rows, N], both row-major
    m.def("fp32_gemm", [](std::uintptr_t x, int rows, int K, std::uintptr_t w, int N, std::uintptr_t bias,
                          std::uintptr_t y, const std::string& kind, const std::string& impl) {
        require(rows >= 1 && K >= 1 && N >= 1, "fp32_gemm: need rows, K, N >= 1");
        require(kind == "packed" || kind == "packed_set" || kind == "panels" || kind == "panels_h",
                "fp32_gemm: kind is packed, packed_set, panels or panels_h");
        require(impl == "auto" || impl == "avx2" || impl == "portable", "fp32_gemm: impl is auto, avx2 or portable");
        require(impl != "avx2" || agf::avx2_available(), "fp32_gemm: this CPU (or build) has no AVX2 + FMA");
        check_ptr(x, "x"); check_ptr(w, "w"); check_ptr(y, "y");
        const agf::Kernels& k = impl == "auto" ? agf::kernels() : impl == "avx2" ? agf::avx2_kernels() : agf::portable_kernels();
        const int width = kind == "packed" || kind == "packed_set" ? agf::kPanel : 64;
        std::vector<float> wp(agf::panel_floats(K, N, width));
        agf::pack_panels(ptr<const float>(w), K, N, 0, N, wp.data(), width);
        const float* X = ptr<const float>(x);
        float* Y = ptr<float>(y);
        if (kind == "packed") k.gemm_packed(X, rows, K, K, wp.data(), N, Y, N);
        else if (kind == "packed_set") k.gemm_packed_set(X, rows, K, K, wp.data(), N, ptr<const float>(bias), Y, N);
        else if (kind == "panels") k.gemm_panels(X, rows, K, K, wp.data(), N, Y, N);
        else {
            std::vector<uint16_t> wh;
            agf::to_half(wp, wh);
            k.gemm_panels_h(X, rows, K, K, wh.data(), N, Y, N);
        }
    });

    py::class_<agf::WaveNetCPU>(m, "WaveNetCPU")
        .def(py::init([](int L, int K, int R, int G, int S, int H, int OUT, int IN, int cycle, int mode, int n_mix,
                         float log_scale_min, std::uintptr_t emb, std::uintptr_t emb_b, std::uintptr_t wd,
                         std::uintptr_t wos, std::uintptr_t bos, std::uintptr_t w1, std::uintptr_t b1,
                         std::uintptr_t w2, std::uintptr_t b2) {
                 for (auto p : {emb, emb_b, wd, wos, bos, w1, b1, w2, b2}) check_ptr(p, "weight");
                 agf::WaveNetDims d{L, K, R, G, S, H, OUT, IN, cycle, mode, n_mix, log_scale_min};
                 return new agf::WaveNetCPU(d, ptr<const float>(emb), ptr<const float>(emb_b), ptr<const float>(wd),
                                            ptr<const float>(wos), ptr<const float>(bos), ptr<const float>(w1),
                                            ptr<const float>(b1), ptr<const float>(w2), ptr<const float>(b2));
             }))
        .def_property_readonly("hist_rows", &agf::WaveNetCPU::hist_rows)
        // Sizes are re-checked here against what the caller says it allocated (n_* in floats).
        .def("run", [](const agf::WaveNetCPU& self, int B, int Tc, int64_t t0, std::uintptr_t P, int64_t n_P, int F,
                       std::uintptr_t bias, int64_t n_bias, std::uintptr_t f0, int64_t n_f0, std::uintptr_t wts,
                       int64_t n_wts, int NB,
                       std::uintptr_t hist, int64_t n_hist, std::uintptr_t x, int64_t n_x, std::uintptr_t noise,
                       int64_t n_noise, std::uintptr_t teacher, int64_t n_teacher, std::uintptr_t out, int64_t n_out,
                       std::uintptr_t logits, int64_t n_logits, int nthreads, int wmode, int schedule) {
            const auto& d = self.dims();
            const int64_t LG = int64_t(d.L) * d.G;
            require(B >= 1 && Tc >= 0 && t0 >= 0, "WaveNetCPU.run: need B >= 1, Tc >= 0, t0 >= 0");
            require(F >= 1 && NB >= 1 && NB <= F, "WaveNetCPU.run: cond needs F >= 1 frames and 1 <= NB <= F");
            require(n_P == int64_t(B) * F * LG, "WaveNetCPU.run: cond.P must be [B, F, L*G]");
            require(n_bias == int64_t(B) * LG, "WaveNetCPU.run: cond.bias must be [B, L*G]");
            require(n_f0 == int64_t(B) * Tc && n_wts == int64_t(B) * Tc * NB,
                    "WaveNetCPU.run: cond.f0 must be [B, Tc], cond.wts [B, Tc, NB]");
            require(n_hist == int64_t(B) * self.hist_rows() * d.R, "WaveNetCPU.run: hist must be [B, hist_rows, R]");
            require(n_x == B && n_out == int64_t(B) * Tc, "WaveNetCPU.run: x must be [B], out [B, Tc]");
            const bool tf = teacher != 0;
            if (tf) {
                require(n_teacher == int64_t(B) * Tc, "WaveNetCPU.run: teacher must be [B, Tc]");
                require(n_logits == int64_t(B) * Tc * d.OUT, "WaveNetCPU.run: logits must be [B, Tc, OUT]");
                check_ptr(logits, "logits");
            } else {
                require(n_noise == int64_t(B) * Tc * (d.mode == 1 ? 2 : 1), "WaveNetCPU.run: noise must be [B, Tc(, 2)]");
                check_ptr(noise, "noise");
            }
            if (Tc == 0) return;
            for (auto p : {P, bias, f0, wts, hist, x, out}) check_ptr(p, "buffer");
            // every frame index the loop will read must lie inside P (a bad index would read
            // outside the buffer, not raise)
            const int32_t* fp = ptr<const int32_t>(f0);
            for (int64_t i = 0; i < int64_t(B) * Tc; ++i)
                require(fp[i] >= 0 && fp[i] + NB <= F, "WaveNetCPU.run: cond.f0 out of range (need 0 <= f0 <= F - NB)");
            agf::CondFrames cond{ptr<const float>(P), F, ptr<const float>(bias), fp, ptr<const float>(wts), NB};
            py::gil_scoped_release nogil;
            self.run(B, Tc, t0, cond, ptr<float>(hist), ptr<float>(x),
                     tf ? nullptr : ptr<const float>(noise), tf ? ptr<const float>(teacher) : nullptr, ptr<float>(out),
                     tf ? ptr<float>(logits) : nullptr, nthreads, wmode, schedule);
        }, py::arg("B"), py::arg("Tc"), py::arg("t0"), py::arg("P"), py::arg("n_P"), py::arg("F"), py::arg("bias"),
           py::arg("n_bias"), py::arg("f0"), py::arg("n_f0"), py::arg("wts"), py::arg("n_wts"), py::arg("NB"),
           py::arg("hist"), py::arg("n_hist"), py::arg("x"), py::arg("n_x"), py::arg("noise"), py::arg("n_noise"),
           py::arg("teacher"), py::arg("n_teacher"), py::arg("out"), py::arg("n_out"), py::arg("logits"),
           py::arg("n_logits"), py::arg("nthreads"), py::arg("wmode") = 0, py::arg("schedule") = 0);

    py::class_<agf::WaveRNNCPU>(m, "WaveRNNCPU")
        .def(py::init([](int R, int F, int OUT, int C, int A, int mode, int n_mix, float log_scale_min,
                         std::vector<std::uintptr_t> w) {
                 require(w.size() == 20, "WaveRNNCPU: expected 20 weight pointers");
                 for (auto p : w) check_ptr(p, "weight");
                 agf::WaveRNNDims d{R, F, OUT, C, A, mode, n_mix, log_scale_min};
                 auto f = [&](int i) { return ptr<const float>(w[i]); };
                 return new agf::WaveRNNCPU(d, f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7), f(8), f(9), f(10),
                                            f(11), f(12), f(13), f(14), f(15), f(16), f(17), f(18), f(19));
             }))
        .def("run", [](const agf::WaveRNNCPU& self, int B, int Tc, std::uintptr_t mel, int64_t n_mel,
                       std::uintptr_t aux, int64_t n_aux, std::uintptr_t h1, int64_t n_h1, std::uintptr_t h2,
                       int64_t n_h2, std::uintptr_t x, int64_t n_x, std::uintptr_t noise, int64_t n_noise,
                       std::uintptr_t teacher, int64_t n_teacher, std::uintptr_t out, int64_t n_out, std::uintptr_t cls,
                       int64_t n_cls, std::uintptr_t logits, int64_t n_logits, int nthreads, int wmode, int schedule) {
            const auto& d = self.dims();
            const int64_t BT = int64_t(B) * Tc;
            require(B >= 1 && Tc >= 0, "WaveRNNCPU.run: need B >= 1 and Tc >= 0");
            require(n_mel == BT * d.C && n_aux == BT * 4 * d.A, "WaveRNNCPU.run: conditioning must be mel [B, Tc, C] and aux [B, Tc, 4A]");
            require(n_h1 == int64_t(B) * d.R && n_h2 == int64_t(B) * d.R && n_x == B, "WaveRNNCPU.run: state must be [B, R], [B, R], [B]");
            require(n_out == BT, "WaveRNNCPU.run: out must be [B, Tc]");
            require(cls == 0 || n_cls == BT, "WaveRNNCPU.run: classes must be [B, Tc]");
            const bool tf = teacher != 0;
            if (tf) {
                require(n_teacher == BT && n_logits == BT * d.OUT, "WaveRNNCPU.run: teacher [B, Tc], logits [B, Tc, OUT]");
                check_ptr(logits, "logits");
            } else {
                require(n_noise == BT * (d.mode == 1 ? 2 : 1), "WaveRNNCPU.run: noise must be [B, Tc(, 2)]");
                check_ptr(noise, "noise");
            }
            if (Tc == 0) return;
            for (auto p : {mel, aux, h1, h2, x, out}) check_ptr(p, "buffer");
            py::gil_scoped_release nogil;
            self.run(B, Tc, ptr<const float>(mel), ptr<const float>(aux), ptr<float>(h1), ptr<float>(h2), ptr<float>(x),
                     tf ? nullptr : ptr<const float>(noise), tf ? ptr<const float>(teacher) : nullptr, ptr<float>(out),
                     cls ? ptr<int64_t>(cls) : nullptr, tf ? ptr<float>(logits) : nullptr, nthreads, wmode, schedule);
        }, py::arg("B"), py::arg("Tc"), py::arg("mel"), py::arg("n_mel"), py::arg("aux"), py::arg("n_aux"),
           py::arg("h1"), py::arg("n_h1"), py::arg("h2"), py::arg("n_h2"), py::arg("x"), py::arg("n_x"),
           py::arg("noise"), py::arg("n_noise"), py::arg("teacher"), py::arg("n_teacher"), py::arg("out"),
           py::arg("n_out"), py::arg("cls"), py::arg("n_cls"), py::arg("logits"), py::arg("n_logits"),
           py::arg("nthreads"), py::arg("wmode") = 0, py::arg("schedule") = 0)
        .def("split_pays", [](const agf::WaveRNNCPU& self, int B, int nthreads, int wmode) {
            require(B >= 1 && nthreads >= 1 && wmode >= 0 && wmode <= 3,
                    "WaveRNNCPU.split_pays: B >= 1, nthreads >= 1, wmode 0..3");
            return self.split_pays(B, nthreads, wmode);
        }, py::arg("B"), py::arg("nthreads"), py::arg("wmode") = 0)
        .def("weight_bytes", [](const agf::WaveRNNCPU& self, int wmode) {
            require(wmode >= 0 && wmode <= 3, "WaveRNNCPU.weight_bytes: wmode 0..3");
            return self.weight_bytes(1, wmode);
        }, py::arg("wmode") = 0)
        .def("sparse_info", [](const agf::WaveRNNCPU& self, int nthreads, int wmode) {
            require(nthreads >= 1 && wmode >= 0 && wmode <= 3, "WaveRNNCPU.sparse_info: nthreads >= 1, wmode 0..3");
            const auto r = self.sparse_info(nthreads, wmode);
            py::dict d;
            d["slices"] = r.slices, d["sparse"] = r.sparse, d["blocks_kept"] = r.kept, d["blocks_total"] = r.total;
            return d;
        }, py::arg("nthreads"), py::arg("wmode") = 0);

    py::class_<agf::DiffWaveCPU>(m, "DiffWaveCPU")
        .def(py::init([](int C, int L, int M, std::vector<int> dil, std::vector<std::uintptr_t> w) {
                 require(C >= 1 && L >= 1 && M >= 0, "DiffWaveCPU: need C >= 1, L >= 1, M >= 0");
                 require(static_cast<int>(dil.size()) == L, "DiffWaveCPU: need one dilation per layer");
                 require(w.size() == 10, "DiffWaveCPU: expected 10 weight pointers");
                 for (auto p : w) check_ptr(p, "weight");
                 auto f = [&](int i) { return ptr<const float>(w[i]); };
                 return new agf::DiffWaveCPU(agf::DiffWaveDims{C, L, M}, dil.data(), f(0), f(1), f(2), f(3), f(4),
                                             f(5), f(6), f(7), f(8), f(9));
             }))
        .def("run", [](const agf::DiffWaveCPU& self, int B, int64_t T, int S, std::uintptr_t eproj, int64_t n_eproj,
                       std::uintptr_t coef, int64_t n_coef, std::uintptr_t noise, int64_t n_noise, std::uintptr_t mel,
                       int64_t n_mel, std::uintptr_t out, int64_t n_out, int nthreads, int hoist, bool winograd,
                       bool bf16) {
            const auto& d = self.dims();
            require(B >= 1 && T >= 0 && S >= 1, "DiffWaveCPU.run: need B >= 1, T >= 0, S >= 1");
            require(hoist >= 0, "DiffWaveCPU.run: hoist is a number of layers (>= 0)");
            require(n_eproj == int64_t(S) * d.L * d.C, "DiffWaveCPU.run: eproj must be [S, L, C]");
            require(n_coef == 3 * int64_t(S), "DiffWaveCPU.run: coefficients must be [3, S]");
            require(n_noise == int64_t(S) * B * T, "DiffWaveCPU.run: noise must be [S, B, T]");
            require(n_out == int64_t(B) * T, "DiffWaveCPU.run: out must be [B, T]");
            if (d.M > 0) {
                require(n_mel == int64_t(B) * T * d.M, "DiffWaveCPU.run: mel must be [B, T, n_mels] (upsampled)");
                check_ptr(mel, "mel");
            }
            if (T == 0) return;
            for (auto p : {eproj, coef, noise, out}) check_ptr(p, "buffer");
            const float* c = ptr<const float>(coef);
            py::gil_scoped_release nogil;
            self.run(B, T, S, ptr<const float>(eproj), c, c + S, c + 2 * S, ptr<const float>(noise),
                     d.M > 0 ? ptr<const float>(mel) : nullptr, ptr<float>(out), nthreads, hoist, winograd, bf16);
        });

    // The bf16 product alone (cpu/bf16.h), for tests: Y [rows, N] = bias + X W (set) or Y += X W,
    // X [rows, K] and W [K, N] fp32 (rounded to bf16 here); impl "native" (AVX512-BF16, if this
    // CPU has it), "avx2", "emulated" or "auto" (what the loops use)
    m.def("bf16_gemm", [](std::uintptr_t x, int rows, int K, std::uintptr_t w, int N, std::uintptr_t bias, bool set,
                          std::uintptr_t y, const std::string& impl) {
        check_product_args("bf16_gemm", rows, K, N, impl, agf::bf16::native_available(), "AVX512-BF16", x, w, y);
        const int K2 = agf::bf16::pairs(K);
        std::vector<uint32_t> xp(static_cast<size_t>(rows) * K2), wp(agf::bf16::panel_words(K, N));
        namespace b = agf::bf16;
        const b::GemmFn f = by_impl<b::GemmFn>(impl, b::gemm_native, b::gemm_avx2, b::gemm_emulated, b::gemm());
        const b::PackFn pk = b::packer_for(f);
        pk(ptr<const float>(x), rows, K, K, xp.data(), K2);
        agf::bf16::pack_panels(ptr<const float>(w), K, N, 0, N, wp.data());
        f(xp.data(), rows, K2, K2, wp.data(), N, bias ? ptr<const float>(bias) : nullptr, set, ptr<float>(y), N);
    });
    m.def("bf16_kernel", []() { return std::string(agf::bf16::gemm_name()); },
          "the bf16 product the loops use: avx512bf16, avx2 or emulated");

    // The int8 product alone (cpu/int8.h), for tests: as bf16_gemm, with W quantised per column
    // and X per row here; impl "native" (AVX512-VNNI), "avx2", "neon" (aarch64 DotProd), "emulated" or "auto".
    // sparse: W in its block-sparse form (its nonzero 16 x 4 blocks), impl "avx2", "emulated" or "auto"
    m.def("int8_gemm", [](std::uintptr_t x, int rows, int K, std::uintptr_t w, int N, std::uintptr_t bias, bool set,
                          std::uintptr_t y, const std::string& impl, bool sparse) {
        require(!sparse || impl == "avx2" || impl == "emulated" || impl == "auto",
                "int8_gemm: the sparse product's impl is avx2, emulated or auto");
        check_product_args("int8_gemm", rows, K, N, impl, agf::int8::native_available(), "AVX512-VNNI", x, w, y,
                           agf::int8::neon_available());
        const int K4 = agf::int8::quads(K);
        agf::int8::Scratch sc;
        sc.reserve(rows, K);
        agf::int8::Weights wq;
        agf::int8::pack_weights(ptr<const float>(w), K, N, 0, N, wq);
        namespace q8 = agf::int8;
        if (sparse) q8::sparsify(wq);
        const q8::GemmFn f =
            sparse ? by_impl<q8::GemmFn>(impl, nullptr, q8::gemm_sparse_avx2, q8::gemm_sparse_emulated, q8::gemm_sparse())
                   : by_impl<q8::GemmFn>(impl, q8::gemm_native, q8::gemm_avx2, q8::gemm_emulated, q8::gemm(), q8::gemm_neon);
        const q8::QuantFn qf = sparse ? q8::quantizer() : q8::quantizer_for(f);
        qf(ptr<const float>(x), rows, K, K, sc.q.data(), K4, sc.s.data(), sc.zp.data());
        f(sc.q.data(), rows, K4, sc.s.data(), sc.zp.data(), wq, bias ? ptr<const float>(bias) : nullptr, set,
          ptr<float>(y), N);
    });
    // The activation quantiser alone: X [rows, K] fp32 -> u [rows, K] uint8, s [rows] fp32, zp [rows] int32
    m.def("int8_quantize", [](std::uintptr_t x, int rows, int K, std::uintptr_t u, std::uintptr_t s, std::uintptr_t zp,
                              const std::string& impl) {
        require(rows >= 0 && K >= 1, "int8_quantize: need rows >= 0, K >= 1");
        check_impl("int8_quantize", impl, false, agf::int8::native_available(), "AVX512-VNNI", agf::int8::neon_available());
        check_ptr(x, "x"); check_ptr(u, "u"); check_ptr(s, "s"); check_ptr(zp, "zp");
        const int K4 = agf::int8::quads(K);
        std::vector<uint32_t> q(static_cast<size_t>(rows) * K4);
        namespace q8 = agf::int8;
        q8::quantizer_for(by_impl<q8::GemmFn>(impl, q8::gemm_native, q8::gemm_avx2, q8::gemm_emulated, nullptr, q8::gemm_neon))(
            ptr<const float>(x), rows, K, K, q.data(), K4, ptr<float>(s), ptr<int32_t>(zp));
        uint8_t* uo = ptr<uint8_t>(u);
        for (int r = 0; r < rows; ++r)
            for (int k = 0; k < K; ++k) uo[static_cast<size_t>(r) * K + k] = static_cast<uint8_t>(q[static_cast<size_t>(r) * K4 + k / 4] >> (8 * (k % 4)));
    });
    m.def("int8_sparse_kernel", []() { return std::string(agf::int8::sparse_fast() ? "avx2" : "emulated"); },
          "the block-sparse int8 product the WaveRNN loop uses: avx2, or emulated (then it keeps int8 weights dense)");
    m.def("int8_kernel", []() { return std::string(agf::int8::gemm_name()); },
          "the int8 product the loops use: avx512vnni, avx2, neon-dotprod or emulated");

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

    // logits [n, c] fp32, u [n] fp32, out [n] int64; fast: the loops' fp32 path
    // (sample_softmax_fast), which must give exactly the same classes
    m.def("sample_softmax", [](std::uintptr_t logits, std::uintptr_t u, std::uintptr_t out, int64_t n, int64_t c,
                               bool fast) {
        require(n >= 0 && c >= 1, "sample_softmax: need n >= 0 and classes >= 1");
        if (n == 0) return;
        check_ptr(logits, "logits"); check_ptr(u, "u"); check_ptr(out, "out");
        const float* lp = ptr<const float>(logits);
        const float* up = ptr<const float>(u);
        int64_t* op = ptr<int64_t>(out);
        const agf::Kernels& kr = agf::kernels();
        py::gil_scoped_release nogil;
        for (int64_t i = 0; i < n; ++i)
            op[i] = fast ? agf::sample_softmax_fast(kr, lp + i * c, static_cast<int>(c), up[i])
                         : agf::sample_softmax(lp + i * c, static_cast<int>(c), up[i]);
    }, py::arg("logits"), py::arg("u"), py::arg("out"), py::arg("n"), py::arg("classes"), py::arg("fast") = false);

    // sampling.h's max_of over x [n] fp32 (for tests: the vectorised max the loops use)
    m.def("max_of", [](std::uintptr_t x, int n, float init) {
        require(n >= 0, "max_of: need n >= 0");
        if (n == 0) return init;
        check_ptr(x, "x");
        return agf::max_of(ptr<const float>(x), n, init);
    }, py::arg("x"), py::arg("n"), py::arg("init"));

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
