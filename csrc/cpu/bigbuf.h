// Large per-call buffers (the DiffWave loop's activations and conditioner cache: megabytes to
// gigabytes, allocated once per call): anonymous memory from the OS, zero as the OS gives it,
// advised as transparent huge pages on Linux.
//
// Why: a std::vector of that size is zero-filled by a pass over it, and every 4 KiB page then
// costs a page fault at its first touch. The bundled default model's conditioner cache for 1 s
// of audio is 82 MB: ~20,000 faults per call (perf stat, 2026-12-07), each a trap to the kernel
// (dearer still in a VM), which took most of what hoisting saves. With 2 MiB pages it is ~40.
// THP "never" (or a non-Linux OS) leaves plain 4 KiB pages: the same as before, minus the fill.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <new>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#define AGF_BIGBUF_MMAP 1
#endif

namespace agf {

template <class T>
class BigBuffer {
   public:
    BigBuffer() = default;
    explicit BigBuffer(size_t n) : n_(n) {
        if (n == 0) return;
        bytes_ = n * sizeof(T);
#ifdef AGF_BIGBUF_MMAP
        void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
        if (bytes_ >= (size_t{2} << 20)) madvise(p, bytes_, MADV_HUGEPAGE);  // advice only: failure is fine
#endif
#else
        void* p = std::calloc(n, sizeof(T));
        if (p == nullptr) throw std::bad_alloc();
#endif
        p_ = static_cast<T*>(p);
    }
    ~BigBuffer() { release(); }
    BigBuffer(const BigBuffer&) = delete;
    BigBuffer& operator=(const BigBuffer&) = delete;

    T* data() { return p_; }
    const T* data() const { return p_; }
    size_t size() const { return n_; }
    bool empty() const { return n_ == 0; }

   private:
    void release() {
        if (p_ == nullptr) return;
#ifdef AGF_BIGBUF_MMAP
        munmap(p_, bytes_);
#else
        std::free(p_);
#endif
        p_ = nullptr;
    }
    T* p_ = nullptr;
    size_t n_ = 0, bytes_ = 0;
};

}  // namespace agf
