// A small CUDA execution emulator for the CPU, so that the persistent kernels' logic (indexing,
// barriers, warp shuffles, the flag protocol between blocks) is tested in CI on machines without
// a GPU. The kernel source is the same file nvcc compiles (csrc/cuda/*.cuh); compat.h maps the
// few CUDA primitives the kernels use onto this header when __CUDACC__ is not defined.
//
// Model: every CUDA thread of every block is a fiber (ucontext) in one OS thread. A fiber runs
// until it reaches a synchronisation point (__syncthreads, a warp shuffle, a spin on a flag) and
// then yields. Between synchronisation points the fibers run one after the other in an order
// shuffled every round (seeded), so a missing barrier shows up as a wrong result; blocks start
// late and pause at random (seeded), so a block that assumes its peers are further along than
// it waited for fails too. All blocks are co-resident (as a cooperative launch guarantees). If a whole round passes in which no fiber
// makes progress, the launch reports a deadlock instead of hanging.
//
// Fibers are started with makecontext and then switched with _setjmp/_longjmp (the translation
// unit must be built without _FORTIFY_SOURCE, whose longjmp check rejects a jump to another stack).
// What it does not model: the memory model (every store is immediately visible), warp
// divergence (a shuffle needs all 32 lanes), timing. Those stay for the GPU run.
#pragma once
#ifndef __CUDACC__
#if defined(_FORTIFY_SOURCE) && _FORTIFY_SOURCE > 0
#error "cuda_emu.h switches stacks with longjmp: build this file with -U_FORTIFY_SOURCE"
#endif

#include <setjmp.h>
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

namespace agf_emu {

struct Block {
    int arrived = 0;
    uint64_t generation = 0;
    std::vector<unsigned char> smem;
};

struct Cluster {
    int arrived = 0;
    uint64_t generation = 0;
};

struct Warp {
    uint64_t slots[2][32];  // double-buffered: shuffle k uses slots[k % 2] (see exchange)
    uint32_t mma_a[32][4], mma_b[32][2];  // operands of a warp-collective mma
    int arrived = 0;
    uint64_t generation = 0;
};

struct Fiber {
    ucontext_t ctx;  // used once, to start the fiber on its own stack
    jmp_buf jb;      // every later switch: _setjmp / _longjmp (no signal-mask system call)
    std::unique_ptr<char[]> stack;
    unsigned tid = 0, bid = 0;
    unsigned shuffles = 0;
    bool started = false, done = false;
};

constexpr size_t SMEM_GUARD = 4096;  // bytes after each block's shared memory that must stay untouched

struct Launch {
    std::vector<Fiber> fibers;
    std::vector<Block> blocks;
    std::vector<Warp> warps;  // [block * warps_per_block + warp]
    std::vector<Cluster> clusters;
    unsigned cluster = 1;     // blocks per cluster (consecutive block indices)
    ucontext_t sched;
    jmp_buf sched_jb;
    Fiber* current = nullptr;
    unsigned nthreads = 0, nwarps = 0;
    size_t smem_bytes = 0;    // dynamic shared memory of each block (its vector holds a guard zone after it)
    uint64_t progress = 0;
    std::function<void()> body;
    std::string fault;        // the first misaligned vector access (a GPU faults on it), reported on return
};

inline Launch*& active() {
    static Launch* l = nullptr;
    return l;
}

// the CUDA built-ins, set by the scheduler before a fiber resumes
inline dim3 threadIdx, blockIdx, blockDim, gridDim;

inline void yield() {
    Launch* L = active();
    if (_setjmp(L->current->jb) == 0) _longjmp(L->sched_jb, 1);
}

inline void note_progress() { ++active()->progress; }

// A vector load or store on a GPU must be aligned to its width ("misaligned address"): the emulator
// records the first one that is not and the launch fails with it.
inline void check_aligned(const void* p, size_t align, const char* what) {
    Launch* L = active();
    if (reinterpret_cast<uintptr_t>(p) % align != 0 && L && L->fault.empty())
        L->fault = std::string("cuda_emu: misaligned ") + what + " (" + std::to_string(align) + "-byte access)";
}

inline void syncthreads() {
    Launch* L = active();
    Block& b = L->blocks[L->current->bid];
    const uint64_t gen = b.generation;
    note_progress();
    if (++b.arrived == static_cast<int>(L->nthreads)) {
        b.arrived = 0;
        ++b.generation;
        return;
    }
    while (b.generation == gen) yield();
}

inline Warp& my_warp() {
    Launch* L = active();
    return L->warps[L->current->bid * L->nwarps + L->current->tid / 32];
}

inline void warp_barrier() {
    Warp& w = my_warp();
    const uint64_t gen = w.generation;
    note_progress();
    if (++w.arrived == 32) {
        w.arrived = 0;
        ++w.generation;
        return;
    }
    while (w.generation == gen) yield();
}

// every lane publishes v, then reads lane src_of(lane)'s value. Shuffle k of a lane uses buffer
// k % 2: a lane can only write buffer k % 2 again at shuffle k + 2, after the barrier of shuffle
// k + 1, which every lane reaches only after it has read shuffle k's value.
template <class T, class F>
inline T exchange(T v, F src_of) {
    static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
    Warp& w = my_warp();
    Fiber* f = active()->current;
    const unsigned lane = f->tid % 32, buf = f->shuffles++ & 1;
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    w.slots[buf][lane] = bits;
    warp_barrier();
    const int src = src_of(static_cast<int>(lane));
    T out;
    uint64_t got = w.slots[buf][(src >= 0 && src < 32) ? src : lane];
    std::memcpy(&out, &got, sizeof(T));
    return out;
}

// float <-> 16-bit storage, round to nearest even (what __float2half_rn / __float2bfloat16_rn do)
inline uint16_t float_to_half_bits(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u;
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u) return static_cast<uint16_t>(sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u));
    if (x >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
    if (x < 0x38800000u) {  // subnormal half (or zero): value / 2^-24, rounded to nearest even
        float a;
        std::memcpy(&a, &x, 4);
        return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(a * 16777216.0f)));
    }
    const uint32_t mant = x & 0x1fffu, base = ((x >> 13) - ((127 - 15) << 10));
    uint32_t h = base;
    if (mant > 0x1000u || (mant == 0x1000u && (base & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
}

inline uint16_t float_to_bf16_bits(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // NaN
    x += 0x7fffu + ((x >> 16) & 1u);
    return static_cast<uint16_t>(x >> 16);
}

inline float half_bits_to_float(uint16_t h);

// mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}: D = A B + C for a warp, operands in the PTX
// ISA's fragment layouts (g = lane / 4, t = lane % 4): A (16 x 16, row-major) a[0] = A[g][2t..2t+1],
// a[1] = A[g+8][2t..], a[2] = A[g][2t+8..], a[3] = A[g+8][2t+8..]; B (16 x 8) b[0] = B[2t..2t+1][g],
// b[1] = B[2t+8..2t+9][g]; C/D (16 x 8 fp32) c[0..1] = C[g][2t..2t+1], c[2..3] = C[g+8][2t..].
// Each 32-bit register holds its two 16-bit elements low half first.
inline void mma_16816(float c[4], const uint32_t a[4], const uint32_t b[2], bool bf16) {
    Warp& w = my_warp();
    const int lane = static_cast<int>(active()->current->tid % 32), g = lane / 4, t = lane % 4;
    for (int i = 0; i < 4; ++i) w.mma_a[lane][i] = a[i];
    w.mma_b[lane][0] = b[0];
    w.mma_b[lane][1] = b[1];
    warp_barrier();
    auto cvt = [bf16](uint32_t reg, int hi) {
        const uint16_t bits = static_cast<uint16_t>(hi ? reg >> 16 : reg & 0xffffu);
        if (!bf16) return half_bits_to_float(bits);
        const uint32_t x = static_cast<uint32_t>(bits) << 16;
        float f;
        std::memcpy(&f, &x, 4);
        return f;
    };
    auto A = [&](int row, int k) {  // the lane and register that hold A[row][k]
        const int src = (row % 8) * 4 + (k % 8) / 2, reg = (row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0);
        return cvt(w.mma_a[src][reg], k & 1);
    };
    auto B = [&](int k, int col) {
        const int src = col * 4 + (k % 8) / 2, reg = k >= 8 ? 1 : 0;
        return cvt(w.mma_b[src][reg], k & 1);
    };
    float d[4];
    for (int i = 0; i < 4; ++i) {
        const int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
        float acc = c[i];
        for (int k = 0; k < 16; ++k) acc += A(row, k) * B(k, col);
        d[i] = acc;
    }
    warp_barrier();  // every lane has read the operands before any lane's next mma overwrites them
    for (int i = 0; i < 4; ++i) c[i] = d[i];
}

// clock64 stand-in: increases on every call (the profile's plumbing is testable, not its values)
inline long long cycle_counter() {
    static long long ticks = 0;
    return ++ticks;
}

inline void* dynamic_smem() {
    Launch* L = active();
    return L->blocks[L->current->bid].smem.data();
}

// Distributed shared memory: the address of the same byte in block `rank` of my cluster.
inline void* cluster_map(void* p, int rank) {
    Launch* L = active();
    const unsigned bid = L->current->bid, base = bid - bid % L->cluster;
    unsigned char* mine = L->blocks[bid].smem.data();
    const ptrdiff_t off = static_cast<unsigned char*>(p) - mine;
    if (rank < 0 || static_cast<unsigned>(rank) >= L->cluster || off < 0 ||
        static_cast<size_t>(off) >= L->smem_bytes) {
        std::fprintf(stderr, "cuda_emu: cluster_map of a non-shared address or rank %d out of the cluster\n", rank);
        std::abort();
    }
    return L->blocks[base + rank].smem.data() + off;
}

inline unsigned cluster_rank() {
    Launch* L = active();
    return L->current->bid % L->cluster;
}

inline void cluster_sync() {
    Launch* L = active();
    Cluster& c = L->clusters[L->current->bid / L->cluster];
    const uint64_t gen = c.generation;
    note_progress();
    if (++c.arrived == static_cast<int>(L->nthreads * L->cluster)) {
        c.arrived = 0;
        ++c.generation;
        return;
    }
    while (c.generation == gen) yield();
}

inline void fiber_entry() {
    Launch* L = active();
    L->body();
    L->current->done = true;
    note_progress();
    _longjmp(L->sched_jb, 1);
}

// Runs body() as every thread of grid x block; returns when all threads have returned.
// cluster: blocks per thread-block cluster (grid must be a multiple of it)
inline void launch(unsigned grid, unsigned block, size_t smem_bytes, std::function<void()> body,
                   uint64_t seed = 0, unsigned cluster = 1, size_t stack_bytes = 64 * 1024) {
    if (active()) throw std::runtime_error("cuda_emu: nested launch");
    if (block == 0 || block % 32) throw std::runtime_error("cuda_emu: block size must be a positive multiple of 32");
    if (cluster == 0 || grid % cluster) throw std::runtime_error("cuda_emu: grid must be a multiple of the cluster size");
    Launch L;
    L.cluster = cluster;
    L.clusters.resize(grid / cluster);
    L.body = std::move(body);
    L.nthreads = block;
    L.nwarps = block / 32;
    L.blocks.resize(grid);
    // garbage, as on a GPU, then a guard zone: a write past the launch's dynamic shared memory
    // faults on a GPU ("Invalid __shared__ write"), so it must fail here too (checked on return)
    for (auto& b : L.blocks) b.smem.assign(smem_bytes + SMEM_GUARD, 0xCD);
    L.smem_bytes = smem_bytes;
    L.warps.resize(static_cast<size_t>(grid) * L.nwarps);
    L.fibers.resize(static_cast<size_t>(grid) * block);
    active() = &L;
    for (unsigned b = 0; b < grid; ++b)
        for (unsigned t = 0; t < block; ++t) {
            Fiber& f = L.fibers[static_cast<size_t>(b) * block + t];
            f.tid = t;
            f.bid = b;
            f.stack.reset(new char[stack_bytes]);
            getcontext(&f.ctx);
            f.ctx.uc_stack.ss_sp = f.stack.get();
            f.ctx.uc_stack.ss_size = stack_bytes;
            f.ctx.uc_link = nullptr;
            makecontext(&f.ctx, fiber_entry, 0);
        }
    std::mt19937_64 rng(seed);
    std::vector<size_t> order(L.fibers.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    // slow blocks: each block starts after a random number of rounds, and any block may sit out a
    // round (1 in 8), as an SM that is late or busy would; a protocol that assumes its peers have
    // reached some point without waiting for them fails under this
    std::vector<int> start(grid);
    for (auto& r : start) r = static_cast<int>(rng() % 8);
    std::vector<char> paused(grid);
    size_t live = L.fibers.size();
    int idle_rounds = 0;
    gridDim.x = grid;
    blockDim.x = block;
    for (int round = 0; live > 0; ++round) {
        std::shuffle(order.begin(), order.end(), rng);
        bool any_paused = false;
        for (unsigned b = 0; b < grid; ++b) {
            paused[b] = round < start[b] || rng() % 8 == 0;
            any_paused |= static_cast<bool>(paused[b]);
        }
        const uint64_t before = L.progress;
        for (size_t i : order) {
            Fiber& f = L.fibers[i];
            if (f.done || paused[f.bid]) continue;
            L.current = &f;
            threadIdx.x = f.tid;
            blockIdx.x = f.bid;
            if (_setjmp(L.sched_jb) == 0) {
                if (!f.started) {
                    f.started = true;
                    swapcontext(&L.sched, &f.ctx);
                } else {
                    _longjmp(f.jb, 1);
                }
            }
            if (f.done) --live;
        }
        if (L.progress == before && live > 0 && !any_paused) {
            if (++idle_rounds >= 2) {
                active() = nullptr;
                throw std::runtime_error("cuda_emu: deadlock (no thread made progress in a whole round; " +
                                         std::to_string(live) + " threads still waiting)");
            }
        } else if (L.progress != before) {
            idle_rounds = 0;
        }
    }
    active() = nullptr;
    if (!L.fault.empty()) throw std::runtime_error(L.fault);
    for (unsigned b = 0; b < grid; ++b)
        for (size_t i = smem_bytes; i < smem_bytes + SMEM_GUARD; ++i)
            if (L.blocks[b].smem[i] != 0xCD)
                throw std::runtime_error("cuda_emu: block " + std::to_string(b) + " wrote shared memory at byte " +
                                         std::to_string(i) + ", past the " + std::to_string(smem_bytes) +
                                         " bytes of its launch");
}

// IEEE half <-> float in software (round to nearest even), for the emulated fp16 weights
inline float half_bits_to_float(uint16_t h) {
    const uint32_t sign = (h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {  // subnormal
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                --exp;
            }
            man &= 0x3ff;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

}  // namespace agf_emu

#endif  // !__CUDACC__
