// Small helpers shared by binding files: argument reading with errors that name the op.
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

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

inline Tensor& tensor_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  try {
    return tensors().get(static_cast<int>(int_arg(info, i, op)));
  } catch (const std::invalid_argument& e) {
    throw Napi::TypeError::New(info.Env(), std::string(op) + ": argument " + std::to_string(i) + ": " + e.what());
  }
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

// Files mapped by mapFile (tensor_napi.cpp), by mapping id.
struct MappedFile {
  std::shared_ptr<void> base;
  size_t size = 0;
};
std::unordered_map<int, MappedFile>& mappings();

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
