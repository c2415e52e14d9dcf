// Each binding file registers its exports here, so binding files never edit a shared list.
#pragma once
#include <napi.h>

namespace kt {

using ExportFn = void (*)(Napi::Env env, Napi::Object exports);

struct ExportRegistration {
  explicit ExportRegistration(ExportFn fn);
};

void register_all_exports(Napi::Env env, Napi::Object exports);

}  // namespace kt

#define KT_REGISTER_EXPORTS(fn) static ::kt::ExportRegistration kt_export_registration_##fn(fn)
