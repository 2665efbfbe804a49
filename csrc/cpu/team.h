// A team of threads for one call: run(fn) executes fn(tid, nthreads) on nthreads threads (the
// caller is thread 0) and joins. barrier() is a sense-reversing spin barrier: the per-sample
// loops synchronise dozens of times per sample, far too often for a futex.
#pragma once
#include <atomic>
#include <functional>
#include <thread>
#include <vector>

namespace agf {

class SpinBarrier {
   public:
    explicit SpinBarrier(int n) : n_(n), count_(n), sense_(false) {}
    void wait() {
        if (n_ == 1) return;
        const bool my = !sense_.load(std::memory_order_relaxed);
        if (count_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            count_.store(n_, std::memory_order_relaxed);
            sense_.store(my, std::memory_order_release);
        } else {
            int spins = 0;
            while (sense_.load(std::memory_order_acquire) != my) {
                if (++spins > 4096) std::this_thread::yield();  // oversubscribed machine: let others run
            }
        }
    }

   private:
    const int n_;
    std::atomic<int> count_;
    std::atomic<bool> sense_;
};

inline void run_team(int nthreads, const std::function<void(int, int)>& fn) {
    std::vector<std::thread> ts;
    for (int i = 1; i < nthreads; ++i) ts.emplace_back(fn, i, nthreads);
    fn(0, nthreads);
    for (auto& t : ts) t.join();
}

// [begin, end) share of n items for thread tid of nt, in multiples of `align` where possible.
inline void split(int n, int tid, int nt, int align, int* begin, int* end) {
    const int blocks = (n + align - 1) / align;
    const int b0 = blocks * tid / nt, b1 = blocks * (tid + 1) / nt;
    *begin = std::min(n, b0 * align);
    *end = std::min(n, b1 * align);
}

}  // namespace agf
