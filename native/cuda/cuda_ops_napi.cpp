// Bindings of the CUDA ops: the CPU ops' argument lists (native/napi/ops_napi.cpp) under a
// `cudaOp` prefix. Each returns a new per-step tensor's handle, or nothing for in-place ops.
#include "cuda/napi_args.h"
#include "cuda/ops.h"
#include "napi/registry.h"

namespace {

using namespace kt::cuda;
using namespace kt::cuda::napi;
using kt::DType;

// cudaOpEmbedding(table, ids) -> [T, D]
Napi::Value Embedding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaOpEmbedding";
    need_args(info, 2, op);
    DeviceTensor& table = dev_arg(info, 0, op);
    DeviceTensor& ids = dev_arg(info, 1, op);
    DeviceTensor out = new_device_tensor(DType::F32, {ids.numel(), table.dim(-1)}, true);
    embedding(table, ids, out);
    return handle(info, std::move(out));
  });
}

// cudaOpRmsNorm(x, w, eps) -> like x
Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaOpRmsNorm";
    need_args(info, 3, op);
    DeviceTensor& x = dev_arg(info, 0, op);
    DeviceTensor& w = dev_arg(info, 1, op);
    DeviceTensor out = new_device_tensor(DType::F32, x.shape, true);
    rms_norm(x, w, static_cast<float>(num_arg(info, 2, op)), out);
    return handle(info, std::move(out));
  });
}

// cudaOpAddRmsNorm(x, delta, w, eps) -> like x (and x += delta)
Napi::Value AddRmsNorm(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaOpAddRmsNorm";
    need_args(info, 4, op);
    DeviceTensor& x = dev_arg(info, 0, op);
    DeviceTensor out = new_device_tensor(DType::F32, x.shape, true);
    add_rms_norm(x, dev_arg(info, 1, op), dev_arg(info, 2, op), static_cast<float>(num_arg(info, 3, op)), out);
    return handle(info, std::move(out));
  });
}

// cudaOpRopeStoreKv(q, kCache, vCache, k, v, positions, slots, invFreq, headDim, rotDim, interleaved)
Napi::Value RopeStoreKv(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaOpRopeStoreKv";
    need_args(info, 11, op);
    rope_store_kv(dev_arg(info, 0, op), dev_arg(info, 1, op), dev_arg(info, 2, op), dev_arg(info, 3, op), dev_arg(info, 4, op),
                  dev_arg(info, 5, op), dev_arg(info, 6, op), dev_arg(info, 7, op), static_cast<int>(int_arg(info, 8, op)),
                  static_cast<int>(int_arg(info, 9, op)), info[10].ToBoolean().Value());
    return info.Env().Undefined();
  });
}

// cudaOpMatmul(x [M, K], w [N, K]) -> [M, N]
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaOpMatmul";
    need_args(info, 2, op);
    DeviceTensor& x = dev_arg(info, 0, op);
    DeviceTensor& w = dev_arg(info, 1, op);
    const int64_t K = w.dim(-1);
    check(K > 0 && x.numel() % K == 0, "matmul", "x " + x.describe() + " does not match weight " + w.describe());
    DeviceTensor out = new_device_tensor(DType::F32, {x.numel() / K, w.dim(0)}, true);
    matmul(x, w, out);
    return handle(info, std::move(out));
  });
}

// cudaOpRope(x, positions, invFreq, headDim, rotDim, interleaved): in place
Napi::Value Rope(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaOpRope";
    need_args(info, 6, op);
    rope(dev_arg(info, 0, op), dev_arg(info, 1, op), dev_arg(info, 2, op), static_cast<int>(int_arg(info, 3, op)),
         static_cast<int>(int_arg(info, 4, op)), info[5].ToBoolean());
    return info.Env().Undefined();
  });
}

// cudaOpStoreKv(kCache, vCache, k, v, slots): in place
Napi::Value StoreKv(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaOpStoreKv";
    need_args(info, 5, op);
    store_kv(dev_arg(info, 0, op), dev_arg(info, 1, op), dev_arg(info, 2, op), dev_arg(info, 3, op), dev_arg(info, 4, op));
    return info.Env().Undefined();
  });
}

// cudaOpPagedAttention(q, kCache, vCache, cuQ, kvLens, blockTables, numKvHeads, scale[, tableStride]) -> like q
Napi::Value PagedAttention(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaOpPagedAttention";
    need_args(info, 8, op);
    DeviceTensor& q = dev_arg(info, 0, op);
    DeviceTensor out = new_device_tensor(DType::F32, q.shape, true);
    const DeviceTensor* stride = info.Length() > 8 && !info[8].IsUndefined() ? &dev_arg(info, 8, op) : nullptr;
    paged_attention(q, dev_arg(info, 1, op), dev_arg(info, 2, op), dev_arg(info, 3, op), dev_arg(info, 4, op), dev_arg(info, 5, op),
                    static_cast<int>(int_arg(info, 6, op)), static_cast<float>(num_arg(info, 7, op)), out, stride);
    return handle(info, std::move(out));
  });
}

// cudaOpSiluMul(gate, up) -> like gate
Napi::Value SiluMul(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaOpSiluMul";
    need_args(info, 2, op);
    DeviceTensor& g = dev_arg(info, 0, op);
    DeviceTensor out = new_device_tensor(DType::F32, g.shape, true);
    silu_mul(g, dev_arg(info, 1, op), out);
    return handle(info, std::move(out));
  });
}

// cudaOpAddInPlace(a, b): a += b
Napi::Value AddInPlace(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaOpAddInPlace";
    need_args(info, 2, op);
    add_inplace(dev_arg(info, 0, op), dev_arg(info, 1, op));
    return info.Env().Undefined();
  });
}

// cudaOpGatherRows(x, idx) -> [n, D]
Napi::Value GatherRows(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaOpGatherRows";
    need_args(info, 2, op);
    DeviceTensor& x = dev_arg(info, 0, op);
    DeviceTensor& idx = dev_arg(info, 1, op);
    const int64_t rows = x.dim(0);
    DeviceTensor out = new_device_tensor(DType::F32, {idx.numel(), rows ? x.numel() / rows : 0}, true);
    gather_rows(x, idx, out);
    return handle(info, std::move(out));
  });
}

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaOpEmbedding", Napi::Function::New(env, Embedding));
  exports.Set("cudaOpRmsNorm", Napi::Function::New(env, RmsNorm));
  exports.Set("cudaOpAddRmsNorm", Napi::Function::New(env, AddRmsNorm));
  exports.Set("cudaOpRopeStoreKv", Napi::Function::New(env, RopeStoreKv));
  exports.Set("cudaOpMatmul", Napi::Function::New(env, Matmul));
  exports.Set("cudaOpRope", Napi::Function::New(env, Rope));
  exports.Set("cudaOpStoreKv", Napi::Function::New(env, StoreKv));
  exports.Set("cudaOpPagedAttention", Napi::Function::New(env, PagedAttention));
  exports.Set("cudaOpSiluMul", Napi::Function::New(env, SiluMul));
  exports.Set("cudaOpAddInPlace", Napi::Function::New(env, AddInPlace));
  exports.Set("cudaOpGatherRows", Napi::Function::New(env, GatherRows));
}

}  // namespace

KT_REGISTER_EXPORTS(Register);
