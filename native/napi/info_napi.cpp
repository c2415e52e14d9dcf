// Build and machine facts the TypeScript side reports (threads, SIMD level).
#include "cpu/cpu_features.h"
#include "cpu/thread_pool.h"
#include "napi/registry.h"

namespace {

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("threads", kt::global_pool().size());
  o.Set("simd", kt::simd_level_name(kt::simd_level()));
  return o;
}

void Register(Napi::Env env, Napi::Object exports) { exports.Set("info", Napi::Function::New(env, Info)); }

}  // namespace

KT_REGISTER_EXPORTS(Register);
