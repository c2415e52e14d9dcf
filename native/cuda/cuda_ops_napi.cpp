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

// The weight at argument i, checked against x: [N, K] with x rows of K.
DeviceTensor& weight_arg(const Napi::CallbackInfo& info, size_t i, const DeviceTensor& x, const char* op) {
  DeviceTensor& w = dev_arg(info, i, op);
  const int64_t K = w.dim(-1);
  check(w.shape.size() == 2 && K > 0 && x.numel() % K == 0, op, "x " + x.describe() + " does not match weight " + w.describe());
  return w;
}

// cudaOpMatmulGroup(x [M, K], w0 [N0, K], w1, ...) -> [handles of [M, Ni]]: x times each weight
// (one GEMV launch where the weights go together), up to 3 weights.
Napi::Value MatmulGroup(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaOpMatmulGroup";
    need_args(info, 2, op);
    const int count = static_cast<int>(info.Length()) - 1;
    check(count <= 3, op, "at most 3 weights");
    DeviceTensor& x = dev_arg(info, 0, op);
    const DeviceTensor* ws[3];
    DeviceTensor outs[3];
    DeviceTensor* out_ptrs[3];
    for (int i = 0; i < count; ++i) {
      ws[i] = &weight_arg(info, static_cast<size_t>(i) + 1, x, op);
      check(ws[i]->dim(-1) == ws[0]->dim(-1), op, "weights must share K");
      outs[i] = new_device_tensor(DType::F32, {x.numel() / ws[i]->dim(-1), ws[i]->dim(0)}, true);
      out_ptrs[i] = &outs[i];
    }
    matmul_group(x, ws, out_ptrs, count);
    Napi::Array handles = Napi::Array::New(info.Env(), static_cast<size_t>(count));
    for (int i = 0; i < count; ++i) handles.Set(static_cast<uint32_t>(i), handle(info, std::move(outs[i])));
    return handles;
  });
}

// cudaOpMatmulSiluMul(x [M, K], gate [N, K], up [N, K]) -> silu(x · gateᵀ) · (x · upᵀ) [M, N]
Napi::Value MatmulSiluMul(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaOpMatmulSiluMul";
    need_args(info, 3, op);
    DeviceTensor& x = dev_arg(info, 0, op);
    DeviceTensor& gate = weight_arg(info, 1, x, op);
    DeviceTensor& up = weight_arg(info, 2, x, op);
    check(gate.shape == up.shape, op, "gate " + gate.describe() + " and up " + up.describe() + " differ in shape");
    DeviceTensor out = new_device_tensor(DType::F32, {x.numel() / gate.dim(-1), gate.dim(0)}, true);
    matmul_silu_mul(x, gate, up, out);
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
  exports.Set("cudaOpMatmulGroup", Napi::Function::New(env, MatmulGroup));
  exports.Set("cudaOpMatmulSiluMul", Napi::Function::New(env, MatmulSiluMul));
  exports.Set("cudaOpAddInPlace", Napi::Function::New(env, AddInPlace));
  exports.Set("cudaOpGatherRows", Napi::Function::New(env, GatherRows));
}

}  // namespace

KT_REGISTER_EXPORTS(Register);
