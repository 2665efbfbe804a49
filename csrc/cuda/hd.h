// AGF_HD: functions shared by host code and CUDA device code (plain inline for the host compiler).
#pragma once
#ifdef __CUDACC__
#define AGF_HD __host__ __device__
#else
#define AGF_HD
#endif
