#pragma once

namespace agf {

struct CpuFeatures {
    bool avx2 = false;
    bool fma = false;
    bool avx512f = false;  // GCC's check includes the OS saving the zmm state (XCR0)
    bool avx512bw = false;
    bool avx512bf16 = false;
    bool avx512vnni = false;
};

// Detected once, on first use.
const CpuFeatures& cpu_features();

// AGF_CPU_KERNELS=portable or =avx2 asks for that fp32 kernel set (kernels.h) and for the exact
// emulations of the bf16 / int8 products (tests compare them with the native kernels this way).
bool kernels_forced(const char* name);  // AGF_CPU_KERNELS == name
bool emulated_products_forced();

}  // namespace agf
