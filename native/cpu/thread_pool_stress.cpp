#include "cpu/thread_pool_stress.h"

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace kt {
namespace {

uint64_t next_random(uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

// Sizes chosen to flip between one-chunk, few-chunk and many-chunk loops, as a
// decode step does (norms over a few rows, matmuls over thousands).
int64_t pick_size(uint64_t r) {
  switch (r % 5) {
    case 0: return 1 + static_cast<int64_t>(r >> 8) % 3;
    case 1: return 2 + static_cast<int64_t>(r >> 8) % 16;
    case 2: return 64 + static_cast<int64_t>(r >> 8) % 512;
    case 3: return 1000 + static_cast<int64_t>(r >> 8) % 5000;
    default: return 7;
  }
}

// One loop in its own frame: `visits` and `tag` die when it returns, so a chunk run
// late with a stale job would write through dangling references and be caught by
// the next frame's checks (or by ThreadSanitizer/ASan as a use after return).
bool one_loop(ThreadPool& pool, int64_t n, int64_t grain, uint64_t tag, bool nested, std::string& why) {
  std::vector<uint32_t> visits(static_cast<size_t>(n), 0);
  const uint64_t expected_tag = tag;
  int64_t bad_ranges = 0;
  std::mutex bad_mu;
  pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
    if (tag != expected_tag || b < 0 || e > n || b >= e) {
      std::lock_guard<std::mutex> lock(bad_mu);
      ++bad_ranges;
      return;
    }
    for (int64_t i = b; i < e; ++i) visits[static_cast<size_t>(i)] += 1;
    if (nested) {
      // A loop inside a chunk must run (serially) rather than deadlock on busy workers;
      // inside a one-chunk outer loop it may run in parallel, hence the atomic.
      std::atomic<int64_t> inner{0};
      pool.parallel_for(8, 1, [&](int64_t ib, int64_t ie) { inner += ie - ib; });
      if (inner != 8) {
        std::lock_guard<std::mutex> lock(bad_mu);
        ++bad_ranges;
      }
    }
  });
  if (bad_ranges != 0) {
    why = "a chunk saw another loop's captures or an out-of-range span";
    return false;
  }
  for (int64_t i = 0; i < n; ++i) {
    if (visits[static_cast<size_t>(i)] != 1) {
      why = "index " + std::to_string(i) + " of " + std::to_string(n) + " visited " +
            std::to_string(visits[static_cast<size_t>(i)]) + " times";
      return false;
    }
  }
  return true;
}

bool throwing_loop(ThreadPool& pool, int64_t n, std::string& why) {
  try {
    pool.parallel_for(n, 1, [&](int64_t b, int64_t e) {
      if (b <= n / 2 && n / 2 < e) throw std::runtime_error("chunk failed");
    });
  } catch (const std::runtime_error&) {
    return true;
  }
  why = "an exception thrown in a chunk did not reach the caller";
  return false;
}

}  // namespace

PoolStressResult stress_thread_pool(ThreadPool& pool, int64_t loops, uint64_t seed, bool nested) {
  PoolStressResult result;
  uint64_t s = seed | 1;
  for (int64_t i = 0; i < loops; ++i) {
    uint64_t r = next_random(s);
    std::string why;
    bool ok;
    if (r % 997 == 0) {
      ok = throwing_loop(pool, 16 + static_cast<int64_t>(r >> 20) % 64, why);
    } else {
      int64_t n = pick_size(r);
      int64_t grain = 1 + static_cast<int64_t>((r >> 40) % 4) * static_cast<int64_t>((r >> 44) % 8);
      ok = one_loop(pool, n, grain, r, nested && r % 101 == 0, why);
    }
    ++result.loops;
    if (!ok) {
      if (result.failures++ == 0) result.first_failure = "loop " + std::to_string(i) + ": " + why;
    }
  }
  return result;
}

}  // namespace kt
