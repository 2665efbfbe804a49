#pragma once

namespace agf {

struct CpuFeatures {
    bool avx2 = false;
    bool fma = false;
    bool avx512f = false;  // GCC's check includes the OS saving the zmm state (XCR0)
    bool avx512bw = false;
    bool avx512bf16 = false;
    bool avx512vnni = false;
    bool asimddp = false;  // aarch64: the dot-product instructions (SDOT / UDOT, ARMv8.2 DotProd)
};

// Detected once, on first use.
const CpuFeatures& cpu_features();

// AGF_CPU_KERNELS=portable or =avx2 asks for that fp32 kernel set (kernels.h) and caps the bf16 /
// int8 products likewise (portable: their exact C++ emulations; avx2: their AVX2 kernels, not the
// AVX-512 ones); AGF_CPU_PRODUCTS=emulated or =avx2 caps the products alone, the fp32 kernels left
// as they are (tests compare every implementation with the emulations this way).
bool kernels_forced(const char* name);  // AGF_CPU_KERNELS == name
enum class ProductIsa { emulated = 0, avx2 = 1, avx512 = 2 };
ProductIsa products_allowed();  // the most the environment allows for the bf16 / int8 products
// this CPU runs, and this build has, the AVX2 + FMA kernels: the fp32 set (kernels_avx2.cpp) and
// the bf16 / int8 products (products_avx2.cpp)
bool avx2_available();

}  // namespace agf
