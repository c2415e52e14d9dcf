// Entry point of the native addon: collects the exports every binding file registered.
#include <vector>

#include "napi/registry.h"

namespace kt {

static std::vector<ExportFn>& registry() {
  static std::vector<ExportFn> fns;
  return fns;
}

ExportRegistration::ExportRegistration(ExportFn fn) { registry().push_back(fn); }

void register_all_exports(Napi::Env env, Napi::Object exports) {
  for (ExportFn fn : registry()) fn(env, exports);
}

}  // namespace kt

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  kt::register_all_exports(env, exports);
#ifdef KT_CUDA
  exports.Set("cuda", Napi::Boolean::New(env, true));
#else
  exports.Set("cuda", Napi::Boolean::New(env, false));
#endif
  return exports;
}

NODE_API_MODULE(ktserve_native, Init)
