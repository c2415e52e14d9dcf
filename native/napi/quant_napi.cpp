// JS bindings of the quantized-weight ops: dequantize, quantize and matmulRaw (tests and
// micro-benchmarks). Every bad argument becomes a JS Error naming the op and the problem.
#include <cmath>
#include <exception>
#include <string>

#include "cpu/matmul.h"
#include "cpu/quant.h"
#include "cpu/thread_pool.h"
#include "napi/registry.h"

namespace {

[[noreturn]] void fail(Napi::Env env, const std::string& op, const std::string& why) {
  throw Napi::Error::New(env, op + ": " + why);
}

// node-addon-api forwards only Napi::Error to JS; anything else from the kernels
// (their messages already start with the op's name) is converted here instead of aborting.
template <typename Fn>
void guarded(Napi::Env env, Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

int64_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber()) fail(info.Env(), op, std::string(name) + " must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || v < 0 || v != std::floor(v) || v > 9007199254740991.0)
    fail(info.Env(), op, std::string(name) + " must be a non-negative integer, got " + std::to_string(v));
  return static_cast<int64_t>(v);
}

const kt::TypeTraits& type_arg(const Napi::CallbackInfo& info, size_t i, const char* op, bool (*supported)(kt::DType),
                               kt::DType* t) {
  const int64_t id = int_arg(info, i, op, "type");
  *t = static_cast<kt::DType>(id);
  const kt::TypeTraits* tr = id <= 255 ? kt::quant_traits(*t) : nullptr;
  if (!tr || !supported(*t))
    fail(info.Env(), op, std::string("unsupported type ") + (tr ? tr->name : "id " + std::to_string(id)));
  return *tr;
}

template <typename T>
T typed_array_arg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name, napi_typedarray_type want,
                  const char* want_name) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != want)
    fail(info.Env(), op, std::string(name) + " must be a " + want_name);
  return info[i].As<T>();
}

void check_blocks(Napi::Env env, const char* op, const kt::TypeTraits& tr, int64_t n, const char* what) {
  if (n % tr.block_elems != 0)
    fail(env, op, std::string(what) + "=" + std::to_string(n) + " is not a multiple of the " + tr.name + " block size " +
                      std::to_string(tr.block_elems));
}

// dequantize(type, src: Uint8Array, n) -> Float32Array
Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "dequantize";
  kt::DType t;
  const kt::TypeTraits& tr = type_arg(info, 0, op, kt::dequantize_supported, &t);
  auto src = typed_array_arg<Napi::Uint8Array>(info, 1, op, "src", napi_uint8_array, "Uint8Array");
  const int64_t n = int_arg(info, 2, op, "n");
  check_blocks(env, op, tr, n, "n");
  const int64_t need = kt::row_bytes(tr, n);
  if (static_cast<int64_t>(src.ByteLength()) != need)
    fail(env, op, std::to_string(n) + " " + tr.name + " elements take " + std::to_string(need) + " bytes, src has " +
                      std::to_string(src.ByteLength()));
  auto out = Napi::Float32Array::New(env, static_cast<size_t>(n));
  if (n > 0) guarded(env, [&] { kt::dequantize_row(t, src.Data(), out.Data(), n); });
  return out;
}

// quantize(type, src: Float32Array) -> Uint8Array
Napi::Value Quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "quantize";
  kt::DType t;
  const kt::TypeTraits& tr = type_arg(info, 0, op, kt::quantize_supported, &t);
  auto src = typed_array_arg<Napi::Float32Array>(info, 1, op, "src", napi_float32_array, "Float32Array");
  const int64_t n = static_cast<int64_t>(src.ElementLength());
  check_blocks(env, op, tr, n, "src.length");
  auto out = Napi::Uint8Array::New(env, static_cast<size_t>(kt::row_bytes(tr, n)));
  if (n > 0) guarded(env, [&] { kt::quantize_row(t, src.Data(), out.Data(), n); });
  return out;
}

// matmulRaw(x: Float32Array, M, K, w: Uint8Array, type, N) -> Float32Array (M x N)
Napi::Value MatmulRaw(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "matmul";
  auto x = typed_array_arg<Napi::Float32Array>(info, 0, op, "x", napi_float32_array, "Float32Array");
  const int64_t M = int_arg(info, 1, op, "M"), K = int_arg(info, 2, op, "K");
  auto w = typed_array_arg<Napi::Uint8Array>(info, 3, op, "w", napi_uint8_array, "Uint8Array");
  kt::DType t;
  const kt::TypeTraits& tr = type_arg(info, 4, op, kt::matmul_supported, &t);
  const int64_t N = int_arg(info, 5, op, "N");
  const std::string shape = " (M=" + std::to_string(M) + " K=" + std::to_string(K) + " N=" + std::to_string(N) + ")";
  if (K == 0) fail(env, op, "K must be positive" + shape);
  check_blocks(env, op, tr, K, "K");
  if (M > (int64_t{1} << 40) / K || N > (int64_t{1} << 40) / K) fail(env, op, "shape too large" + shape);
  if (static_cast<int64_t>(x.ElementLength()) != M * K)
    fail(env, op, "x has " + std::to_string(x.ElementLength()) + " floats, expected M*K" + shape);
  const int64_t need = N * kt::row_bytes(tr, K);
  if (static_cast<int64_t>(w.ByteLength()) != need)
    fail(env, op, std::string("w has ") + std::to_string(w.ByteLength()) + " bytes, " + tr.name + " needs " +
                      std::to_string(need) + shape);
  auto out = Napi::Float32Array::New(env, static_cast<size_t>(M * N));
  guarded(env, [&] { kt::matmul(x.Data(), M, K, w.Data(), t, N, out.Data(), kt::global_pool()); });
  return out;
}

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("dequantize", Napi::Function::New(env, Dequantize));
  exports.Set("quantize", Napi::Function::New(env, Quantize));
  exports.Set("matmulRaw", Napi::Function::New(env, MatmulRaw));
}

}  // namespace

KT_REGISTER_EXPORTS(Register);
