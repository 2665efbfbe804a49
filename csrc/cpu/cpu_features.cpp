// Run-time CPU feature detection: SIMD kernels are compiled per instruction set
// (*_avx2.cpp with -mavx2 -mfma, ...) and chosen here, never with -march=native at build time.
#include "cpu/cpu_features.h"

#include "cpu/kernels.h"  // avx2_compiled

#include <cstdlib>
#include <cstring>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)  // the kernel's bit (asm/hwcap.h), for C libraries without it
#endif
#endif

namespace agf {

CpuFeatures detect_cpu_features() {
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.avx512f = __builtin_cpu_supports("avx512f");
    f.avx512bw = __builtin_cpu_supports("avx512bw");
    f.avx512bf16 = __builtin_cpu_supports("avx512bf16");
    f.avx512vnni = __builtin_cpu_supports("avx512vnni");
#elif defined(__aarch64__) && defined(__linux__)
    f.asimddp = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__aarch64__) && defined(__APPLE__)
    f.asimddp = true;  // every Apple silicon core (M1 on) has it
#endif
    return f;
}

const CpuFeatures& cpu_features() {
    static const CpuFeatures f = detect_cpu_features();
    return f;
}

bool kernels_forced(const char* name) {
    const char* env = std::getenv("AGF_CPU_KERNELS");
    return env && std::strcmp(env, name) == 0;
}

ProductIsa products_allowed() {
    const char* env = std::getenv("AGF_CPU_PRODUCTS");
    const bool emulated = env && std::strcmp(env, "emulated") == 0, avx2 = env && std::strcmp(env, "avx2") == 0;
    if (emulated || kernels_forced("portable")) return ProductIsa::emulated;
    return avx2 || kernels_forced("avx2") ? ProductIsa::avx2 : ProductIsa::avx512;
}

bool avx2_available() {
    const CpuFeatures& f = cpu_features();
    return f.avx2 && f.fma && avx2_compiled();
}

}  // namespace agf
