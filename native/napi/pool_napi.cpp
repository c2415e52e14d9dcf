// The thread-pool stress (cpu/thread_pool_stress.h) for the node:test suite: it runs on
// the JS thread and blocks it, which is what a test wants.
#include <memory>

#include "cpu/thread_pool_stress.h"
#include "napi/registry.h"

namespace {

// threadPoolStress(loops, threads, seed, nested): threads 0 → the process-wide pool.
Napi::Value ThreadPoolStress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t loops = info[0].As<Napi::Number>().Int64Value();
  int threads = info[1].As<Napi::Number>().Int32Value();
  uint64_t seed = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
  bool nested = info.Length() > 3 ? info[3].ToBoolean().Value() : true;
  std::unique_ptr<kt::ThreadPool> own;
  if (threads > 0) own = std::make_unique<kt::ThreadPool>(threads);
  kt::ThreadPool& pool = own ? *own : kt::global_pool();
  kt::PoolStressResult r = kt::stress_thread_pool(pool, loops, seed, nested);
  Napi::Object o = Napi::Object::New(env);
  o.Set("loops", static_cast<double>(r.loops));
  o.Set("threads", pool.size());
  o.Set("failures", static_cast<double>(r.failures));
  o.Set("firstFailure", r.first_failure);
  return o;
}

void Register(Napi::Env env, Napi::Object exports) { exports.Set("threadPoolStress", Napi::Function::New(env, ThreadPoolStress)); }

}  // namespace

KT_REGISTER_EXPORTS(Register);
