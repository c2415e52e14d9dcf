#include "cpu/thread_pool.h"

#include <algorithm>
#include <cstdlib>

namespace kt {
namespace {

constexpr uint64_t kEpochShift = 32, kChunksShift = 16, kField = 0xFFFF;

uint64_t epoch_of(uint64_t w) { return w >> kEpochShift; }
uint64_t chunks_of(uint64_t w) { return (w >> kChunksShift) & kField; }
uint64_t next_of(uint64_t w) { return w & kField; }

void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}

// True on a pool worker, and on a caller while its loop runs: a parallel_for from
// there would wait on the very threads that are busy with the outer loop.
thread_local bool tls_inside_loop = false;

}  // namespace

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < std::max(threads, 1); ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    claim_.store((epoch_of(claim_.load()) + 1) << kEpochShift, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks() {
  uint64_t w = claim_.load(std::memory_order_acquire);
  for (;;) {
    if (next_of(w) >= chunks_of(w)) return;
    // On failure w is reloaded (acquire), possibly as a newer loop's word; claiming
    // from that one is right too, since its job fields were published before it.
    if (!claim_.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    // A successful claim keeps this loop's job fields in place: parallel_for does not
    // return (nor write the next job) until this chunk's pending_ decrement below.
    int64_t b = static_cast<int64_t>(next_of(w)) * chunk_, e = std::min(job_n_, b + chunk_);
    try {
      (*job_)(b, e);
    } catch (...) {
      // An exception escaping a worker thread would terminate the process.
      std::lock_guard<std::mutex> lock(error_mu_);
      if (!error_) error_ = std::current_exception();
    }
    pending_.fetch_sub(1, std::memory_order_release);
    w = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker_loop() {
  tls_inside_loop = true;
  uint64_t seen = 0;
  for (;;) {
    // Spin a little first: the next loop usually comes within microseconds.
    uint64_t e = epoch_of(claim_.load(std::memory_order_acquire));
    for (int spin = 0; e == seen && spin < 20000; ++spin) {
      cpu_relax();
      e = epoch_of(claim_.load(std::memory_order_acquire));
    }
    if (e == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return epoch_of(claim_.load(std::memory_order_acquire)) != seen; });
      e = epoch_of(claim_.load(std::memory_order_acquire));
    }
    seen = e;
    if (stop_.load(std::memory_order_acquire)) return;
    run_chunks();
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t max_chunks = (n + grain - 1) / grain;
  if (workers_.empty() || max_chunks == 1 || tls_inside_loop) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> call(call_mu_);
  // A few chunks per thread balances uneven work without much contention.
  int64_t chunks = std::min({max_chunks, static_cast<int64_t>(size()) * 4, kMaxChunks});
  job_ = &fn;
  job_n_ = n;
  chunk_ = (n + chunks - 1) / chunks;
  chunks = (n + chunk_ - 1) / chunk_;
  pending_.store(chunks, std::memory_order_relaxed);
  {
    // Under mu_ so a worker between its wait predicate and its sleep cannot miss it.
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t epoch = epoch_of(claim_.load(std::memory_order_relaxed)) + 1;
    claim_.store(epoch << kEpochShift | static_cast<uint64_t>(chunks) << kChunksShift, std::memory_order_release);
  }
  wake_.notify_all();
  tls_inside_loop = true;
  run_chunks();
  tls_inside_loop = false;
  // Acquire pairs with each chunk's release decrement: their writes are visible here.
  while (pending_.load(std::memory_order_acquire) > 0) cpu_relax();
  job_ = nullptr;
  if (error_) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

ThreadPool& global_pool() {
  static ThreadPool pool([] {
    const char* env = std::getenv("KT_NUM_THREADS");
    int n = env ? std::atoi(env) : 0;
    if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
    return std::max(n, 1);
  }());
  return pool;
}

}  // namespace kt
