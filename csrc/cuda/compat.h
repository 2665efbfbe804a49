// The handful of CUDA primitives the persistent kernels use, written once for nvcc and once for
// the CPU emulator (cuda_emu.h), so the same kernel source runs on a GPU and in CI tests.
//   AGF_KERNEL / AGF_DEV       __global__ / __device__ inline (AGF_DEV_NOINLINE: a real call)
//   agf_tid() agf_bid() agf_nthreads() agf_nblocks()
//   agf_sync()                 __syncthreads()
//   agf_shfl_xor/up/idx(v, k)  full-warp shuffles (all 32 lanes must call)
//   agf_smem()                 the dynamic shared memory of the block
//   agf_wait_eq(flag, v)       spin until an acquire load of *flag == v (one thread calls it)
//   agf_wait_ge(flag, v)       the same until *flag >= v
//   agf_publish(flag, v)       __threadfence + release store (after the data it announces)
//   agf_ldcg(p)                a load that bypasses L1 (data written by other SMs this launch)
//   agf_ldcg4(p, v)            the same for 4 floats at once (p 16-byte aligned)
//   agf_half2float / agf_bf162float   from raw 16-bit storage; agf_bits_float(u32) reinterprets
//   agf_mma_16816(c, a, b, bf16)   a warp's tensor-core m16n8k16 product (fp16 / bf16 in, fp32 acc)
//   agf_clock()                a cycle counter (clock64; the emulator counts calls: order only)
//   agf_red_add(p, v)          *p += v in global memory without waiting (atomic RED)
//   agf_cluster_map(p, rank)   address of the same shared-memory byte in block `rank` of my cluster
//   agf_cluster_sync()         barrier over the cluster; agf_wait_eq_cluster / agf_publish_cluster:
//                              the flag protocol at cluster scope on shared-memory flags
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define AGF_KERNEL __global__
#define AGF_DEV __device__ __forceinline__
// a cold path kept out of the caller's registers; static: a non-inline function defined in a header
// must not be defined once per .cu file for the linker
#define AGF_DEV_NOINLINE static __device__ __noinline__

AGF_DEV int agf_tid() { return threadIdx.x; }
AGF_DEV int agf_bid() { return blockIdx.x; }
AGF_DEV int agf_nthreads() { return blockDim.x; }
AGF_DEV int agf_nblocks() { return gridDim.x; }
AGF_DEV void agf_sync() { __syncthreads(); }
template <class T>
AGF_DEV T agf_shfl_xor(T v, int m) { return __shfl_xor_sync(0xffffffffu, v, m); }
template <class T>
AGF_DEV T agf_shfl_up(T v, int d) { return __shfl_up_sync(0xffffffffu, v, d); }
template <class T>
AGF_DEV T agf_shfl_idx(T v, int src) { return __shfl_sync(0xffffffffu, v, src); }
AGF_DEV long long agf_clock() { return clock64(); }  // this SM's cycle counter
// fire-and-forget add to global memory (a RED: the thread does not wait for it)
AGF_DEV void agf_red_add(long long* p, long long v) { atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v)); }
AGF_DEV void* agf_smem() {
    extern __shared__ __align__(16) unsigned char agf_dynamic_smem[];
    return agf_dynamic_smem;
}
AGF_DEV unsigned long long agf_ld_acquire(const unsigned long long* p) {
    unsigned long long v;
    asm volatile("ld.acquire.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
}
// A wait that never ends is a bug (a block that is not resident, a broken protocol): after ~10 s
// (2e10 cycles) the kernel traps, so the launch fails with an error instead of hanging the GPU.
AGF_DEV void agf_wait_eq(const unsigned long long* p, unsigned long long v) {
    const long long start = clock64();
    while (agf_ld_acquire(p) != v) {
        if (clock64() - start > 20000000000LL) __trap();
    }
}
AGF_DEV void agf_wait_ge(const unsigned long long* p, unsigned long long v) {
    const long long start = clock64();
    while (agf_ld_acquire(p) < v) {
        if (clock64() - start > 20000000000LL) __trap();
    }
}
AGF_DEV void agf_publish(unsigned long long* p, unsigned long long v) {
    __threadfence();
    asm volatile("st.release.gpu.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}
AGF_DEV float agf_ldcg(const float* p) { return __ldcg(p); }
AGF_DEV void agf_ldcg4(const float* p, float v[4]) {
    const float4 q = __ldcg(reinterpret_cast<const float4*>(p));
    v[0] = q.x; v[1] = q.y; v[2] = q.z; v[3] = q.w;
}
// Thread-block clusters (sm_90): distributed shared memory and the cluster barrier, in PTX so the
// file still compiles for older targets (where these trap: the host never launches them there).
AGF_DEV void* agf_cluster_map(void* p, int rank) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    void* out;
    asm volatile("mapa.u64 %0, %1, %2;" : "=l"(out) : "l"(p), "r"(rank));
    return out;
#else
    __trap();
    return p;
#endif
}
AGF_DEV void agf_cluster_sync() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
#else
    __trap();
#endif
}
// spin on a flag in this block's shared memory that a block of the cluster sets
AGF_DEV void agf_wait_eq_cluster(const unsigned long long* p, unsigned long long v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    const long long start = clock64();
    unsigned long long x;
    do {
        asm volatile("ld.acquire.cluster.u64 %0, [%1];" : "=l"(x) : "l"(p) : "memory");
        if (clock64() - start > 20000000000LL) __trap();
    } while (x != v);
#else
    __trap();
#endif
}
// release store to a flag in (another block's) shared memory, after the data it announces
AGF_DEV void agf_publish_cluster(unsigned long long* p, unsigned long long v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("fence.acq_rel.cluster;\n\tst.release.cluster.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
#else
    __trap();
#endif
}
AGF_DEV float agf_half2float(uint16_t h) { return __half2float(__ushort_as_half(h)); }
AGF_DEV float agf_bf162float(uint16_t h) { return __uint_as_float(static_cast<unsigned>(h) << 16); }
AGF_DEV float agf_bits_float(uint32_t b) { return __uint_as_float(b); }
AGF_DEV uint16_t agf_float2half_bits(float f) { return __half_as_ushort(__float2half_rn(f)); }
AGF_DEV uint16_t agf_float2bf16_bits(float f) { return __bfloat16_as_ushort(__float2bfloat16_rn(f)); }
// IEEE round-to-nearest division even under --use_fast_math (which makes `/` approximate): values
// that must equal torch's bit for bit (label_to_float) use it
AGF_DEV float agf_div_rn(float a, float b) { return __fdiv_rn(a, b); }
// tensor cores: D = A B + D, m16n8k16, fp32 accumulators (fragment layouts: cuda_emu.h, mma_16816)
AGF_DEV void agf_mma_16816(float c[4], const uint32_t a[4], const uint32_t b[2], bool bf16) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    if (bf16)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    __trap();
#endif
}

#else  // CPU emulation
#include "cuda_emu.h"

#define AGF_KERNEL
#define AGF_DEV inline
#define AGF_DEV_NOINLINE inline

inline int agf_tid() { return agf_emu::threadIdx.x; }
inline int agf_bid() { return agf_emu::blockIdx.x; }
inline int agf_nthreads() { return agf_emu::blockDim.x; }
inline int agf_nblocks() { return agf_emu::gridDim.x; }
inline void agf_sync() { agf_emu::syncthreads(); }
template <class T>
inline T agf_shfl_xor(T v, int m) { return agf_emu::exchange(v, [m](int lane) { return lane ^ m; }); }
template <class T>
inline T agf_shfl_up(T v, int d) { return agf_emu::exchange(v, [d](int lane) { return lane >= d ? lane - d : lane; }); }
template <class T>
inline T agf_shfl_idx(T v, int src) { return agf_emu::exchange(v, [src](int) { return src; }); }
inline void* agf_smem() { return agf_emu::dynamic_smem(); }
inline long long agf_clock() { return agf_emu::cycle_counter(); }
inline void agf_red_add(long long* p, long long v) { *p += v; }
inline void agf_wait_eq(const unsigned long long* p, unsigned long long v) {
    while (*reinterpret_cast<const volatile unsigned long long*>(p) != v) agf_emu::yield();
    agf_emu::note_progress();
}
inline void agf_wait_ge(const unsigned long long* p, unsigned long long v) {
    while (*reinterpret_cast<const volatile unsigned long long*>(p) < v) agf_emu::yield();
    agf_emu::note_progress();
}
inline void agf_publish(unsigned long long* p, unsigned long long v) {
    *reinterpret_cast<volatile unsigned long long*>(p) = v;
    agf_emu::note_progress();
}
inline float agf_ldcg(const float* p) { return *p; }
inline void agf_ldcg4(const float* p, float v[4]) {
    agf_emu::check_aligned(p, 16, "4-float L2 load");
    for (int i = 0; i < 4; ++i) v[i] = p[i];
}
inline void* agf_cluster_map(void* p, int rank) { return agf_emu::cluster_map(p, rank); }
inline void agf_cluster_sync() { agf_emu::cluster_sync(); }
inline void agf_wait_eq_cluster(const unsigned long long* p, unsigned long long v) { agf_wait_eq(p, v); }
inline void agf_publish_cluster(unsigned long long* p, unsigned long long v) { agf_publish(p, v); }
inline float agf_half2float(uint16_t h) { return agf_emu::half_bits_to_float(h); }
inline uint16_t agf_float2half_bits(float f) { return agf_emu::float_to_half_bits(f); }
inline uint16_t agf_float2bf16_bits(float f) { return agf_emu::float_to_bf16_bits(f); }
inline float agf_div_rn(float a, float b) { return a / b; }
inline void agf_mma_16816(float c[4], const uint32_t a[4], const uint32_t b[2], bool bf16) {
    agf_emu::mma_16816(c, a, b, bf16);
}
inline float agf_bits_float(uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}
inline float agf_bf162float(uint16_t h) { return agf_bits_float(static_cast<uint32_t>(h) << 16); }
#endif
