// A fixed pool of worker threads for data-parallel loops. The calling thread takes
// part, and workers spin briefly before sleeping, because a decode step issues
// hundreds of short loops and a condition-variable wake-up per loop would dominate.
#pragma once
#include <atomic>
#include <exception>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kt {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over [0, n) split into contiguous chunks, at least
  // `grain` items each; returns when every chunk is done. An exception thrown by fn
  // (on any thread) is rethrown here, after every chunk has finished.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker_loop(int index);
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0, chunk_ = 0, chunks_ = 0;
  std::mutex call_mu_;  // one parallel_for at a time
  std::mutex error_mu_;
  std::exception_ptr error_;
};

// The process-wide pool, sized to the cores (KT_NUM_THREADS overrides).
ThreadPool& global_pool();

}  // namespace kt
