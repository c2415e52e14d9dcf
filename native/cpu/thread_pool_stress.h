// A self-checking stress of ThreadPool, shared by the addon (a node:test runs it in
// CI) and a standalone binary built with ThreadSanitizer (scripts/tsan-thread-pool.sh).
#pragma once
#include <cstdint>
#include <string>

#include "cpu/thread_pool.h"

namespace kt {

struct PoolStressResult {
  int64_t loops = 0;
  int64_t failures = 0;   // loops whose coverage, captures or exception were wrong
  std::string first_failure;
};

// Runs `loops` parallel_for calls of alternating sizes and grains, each over a fresh
// stack frame, and checks that every index is visited exactly once, by a call that
// saw this loop's captures, and that an exception thrown in a chunk comes back.
// `nested`: some chunks run a loop of their own.
PoolStressResult stress_thread_pool(ThreadPool& pool, int64_t loops, uint64_t seed, bool nested = true);

}  // namespace kt
