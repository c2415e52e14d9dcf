// Small helpers shared by binding files: argument reading with errors that name the op.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "core/tensor_table.h"
#include "cpu/tensor.h"

namespace kt::napi {

inline void need_args(const Napi::CallbackInfo& info, size_t n, const char* op) {
  if (info.Length() < n)
    throw Napi::TypeError::New(info.Env(), std::string(op) + ": expected " + std::to_string(n) + " arguments, got " + std::to_string(info.Length()));
}

inline int64_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": argument " + std::to_string(i) + " must be a number");
  return info[i].As<Napi::Number>().Int64Value();
}

inline double num_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": argument " + std::to_string(i) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

// The live tensor handle at argument i and its device; a handle that is not live is a TypeError.
struct HandleArg {
  int id;
  Device device;
};
inline HandleArg live_handle_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  const int id = static_cast<int>(int_arg(info, i, op));
  try {
    return {id, tensors().device_of(id)};
  } catch (const std::invalid_argument& e) {
    throw Napi::TypeError::New(info.Env(), std::string(op) + ": argument " + std::to_string(i) + ": " + e.what());
  }
}

// The same handle, which must be on a device of kind `kind`: another device's is std::invalid_argument
// ("op: argument 1: tensor 7 is on cuda:0, not on the cpu"), so an op never reads another device's memory.
inline int handle_arg(const Napi::CallbackInfo& info, size_t i, const char* op, DeviceKind kind) {
  const HandleArg h = live_handle_arg(info, i, op);
  if (h.device.kind != kind)
    throw std::invalid_argument(std::string(op) + ": argument " + std::to_string(i) + ": " + wrong_device_kind(h.id, h.device, kind));
  return h.id;
}

inline Tensor& tensor_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  return tensors().get<Tensor>(handle_arg(info, i, op, DeviceKind::CPU));
}

inline std::vector<int64_t> shape_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (!info[i].IsArray()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": shape must be an array");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<int64_t> shape(a.Length());
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value v = a.Get(k);
    if (!v.IsNumber() || v.As<Napi::Number>().DoubleValue() < 0)
      throw Napi::TypeError::New(info.Env(), std::string(op) + ": shape entries must be non-negative numbers");
    shape[k] = v.As<Napi::Number>().Int64Value();
  }
  return shape;
}

// Runs fn, turning C++ exceptions into JavaScript errors (never abort on bad input).
template <typename Fn>
Napi::Value guarded(const Napi::CallbackInfo& info, Fn&& fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

}  // namespace kt::napi
