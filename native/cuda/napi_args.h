// Argument readers for the CUDA bindings: device tensor handles, with errors naming the op.
#pragma once
#include <napi.h>

#include <string>

#include "cuda/device_tensor.h"
#include "napi/napi_util.h"

namespace kt::cuda::napi {

using kt::napi::guarded;
using kt::napi::int_arg;
using kt::napi::need_args;
using kt::napi::num_arg;
using kt::napi::shape_arg;

inline DeviceTensor& dev_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  try {
    return device_tensors().get(static_cast<int>(int_arg(info, i, op)));
  } catch (const std::invalid_argument& e) {
    throw Napi::TypeError::New(info.Env(), std::string(op) + ": argument " + std::to_string(i) + ": " + e.what());
  }
}

// The bytes of file mapping `id` (cudaMapFile) and their count, or null where there is none.
const uint8_t* mapped_bytes(int id, size_t* size);

inline Napi::Number handle(const Napi::CallbackInfo& info, DeviceTensor t) {
  return Napi::Number::New(info.Env(), device_tensors().add(std::move(t)));
}

}  // namespace kt::cuda::napi
