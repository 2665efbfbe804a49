#pragma once

namespace agf {

struct CpuFeatures {
    bool avx2 = false;
    bool fma = false;
    bool avx512f = false;
};

// Detected once, on first use.
const CpuFeatures& cpu_features();

}  // namespace agf
