// Standalone ThreadPool stress for ThreadSanitizer (scripts/tsan-thread-pool.sh):
// thread_pool_stress [loops] [threads] [seed] [nested 0|1]; exits 1 on any failed check.
#include <cstdio>
#include <cstdlib>

#include "cpu/thread_pool_stress.h"

int main(int argc, char** argv) {
  long long loops = argc > 1 ? std::atoll(argv[1]) : 200000;
  int threads = argc > 2 ? std::atoi(argv[2]) : 4;
  unsigned long long seed = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 12345;
  bool nested = argc > 4 ? std::atoi(argv[4]) != 0 : true;
  kt::ThreadPool pool(threads);
  kt::PoolStressResult r = kt::stress_thread_pool(pool, loops, seed, nested);
  std::printf("thread pool stress: %lld loops on %d threads, seed %llu: %lld failed%s%s\n", static_cast<long long>(r.loops),
              threads, seed, static_cast<long long>(r.failures), r.failures ? " — first: " : "", r.first_failure.c_str());
  return r.failures == 0 ? 0 : 1;
}
