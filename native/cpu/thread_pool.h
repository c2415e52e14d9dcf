// A fixed pool of worker threads for data-parallel loops. The calling thread takes
// part, and workers spin briefly before sleeping, because a decode step issues
// hundreds of short loops and a condition-variable wake-up per loop would dominate.
//
// Chunks are handed out through one atomic word holding (epoch, chunk count, next
// chunk): a worker claims a chunk only by a compare-and-swap on the word of the loop
// it read, so a worker that is late from one loop can never run a chunk of the next
// one with the old loop's function (the crash of issue 12).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
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
  // (on any thread) is rethrown here, after every chunk has finished. A call made
  // from inside fn (a nested loop) runs serially on the calling thread.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // Most chunks one loop is split into (the width of the claim word's fields).
  static constexpr int64_t kMaxChunks = 0xFFFF;

 private:
  void worker_loop();
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  // epoch << 32 | chunks << 16 | next. Published with release after the job fields
  // are written; the job fields stay put until every claimed chunk is done.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> pending_{0};  // chunks claimed or not, not yet finished
  std::atomic<bool> stop_{false};
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0, chunk_ = 0;
  std::mutex call_mu_;  // one parallel_for at a time
  std::mutex error_mu_;
  std::exception_ptr error_;
};

// The process-wide pool, sized to the cores (KT_NUM_THREADS overrides).
ThreadPool& global_pool();

}  // namespace kt
