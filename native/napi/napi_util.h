// Small helpers shared by binding files: argument reading with errors that name the op.
#pragma once
#include <napi.h>

#include <cmath>
#include <stdexcept>
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

// A whole number in [lo, hi], else std::invalid_argument("op: name must be an integer in [lo, hi], got v").
inline int64_t int_in(const Napi::Value& v, const char* op, const std::string& name, int64_t lo, int64_t hi) {
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d == std::floor(d) && d >= static_cast<double>(lo) && d <= static_cast<double>(hi)))
    throw std::invalid_argument(std::string(op) + ": " + name + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                "], got " + v.ToString().Utf8Value());
  return static_cast<int64_t>(d);
}

// Argument i as an array of whole numbers in [lo, hi], each checked as int_in does (named "name[e]").
inline std::vector<int64_t> int_list_arg(const Napi::CallbackInfo& info, size_t i, const char* op, const std::string& name, int64_t lo, int64_t hi) {
  if (!info[i].IsArray()) throw std::invalid_argument(std::string(op) + ": " + name + " must be an array");
  const Napi::Array a = info[i].As<Napi::Array>();
  std::vector<int64_t> v;
  for (uint32_t k = 0; k < a.Length(); ++k) v.push_back(int_in(a.Get(k), op, name + "[" + std::to_string(k) + "]", lo, hi));
  return v;
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
