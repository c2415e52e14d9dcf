// Bindings of the CPU ops: each takes tensor handles and returns a new scratch tensor's
// handle (or nothing, for in-place ops).
#include "cpu/ops.h"
#include "napi/napi_util.h"
#include "napi/registry.h"

namespace {

using namespace kt;
using namespace kt::napi;

Napi::Number handle(const Napi::CallbackInfo& info, Tensor t) { return Napi::Number::New(info.Env(), tensors().add(std::move(t), Device::cpu())); }

// embedding(table, ids) -> [T, D]
Napi::Value Embedding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    need_args(info, 2, "embedding");
    Tensor& table = tensor_arg(info, 0, "embedding");
    Tensor& ids = tensor_arg(info, 1, "embedding");
    Tensor out = new_tensor(DType::F32, {ids.numel(), table.dim(-1)}, true);
    cpu::embedding(table, ids, out);
    return handle(info, std::move(out));
  });
}

// rmsNorm(x, w, eps) -> same shape as x
Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    need_args(info, 3, "rmsNorm");
    Tensor& x = tensor_arg(info, 0, "rmsNorm");
    Tensor& w = tensor_arg(info, 1, "rmsNorm");
    Tensor out = new_tensor(DType::F32, x.shape, true);
    cpu::rms_norm(x, w, static_cast<float>(num_arg(info, 2, "rmsNorm")), out);
    return handle(info, std::move(out));
  });
}

// matmul(x [M, K], w [N, K]) -> [M, N]
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    need_args(info, 2, "matmul");
    Tensor& x = tensor_arg(info, 0, "matmul");
    Tensor& w = tensor_arg(info, 1, "matmul");
    const int64_t K = w.dim(-1);
    check(K > 0 && x.numel() % K == 0, "matmul", "x " + x.describe() + " does not match weight " + w.describe());
    Tensor out = new_tensor(DType::F32, {x.numel() / K, w.dim(0)}, true);
    cpu::matmul(x, w, out);
    return handle(info, std::move(out));
  });
}

// rope(x, positions, invFreq, headDim, rotDim, interleaved): in place
Napi::Value Rope(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    need_args(info, 6, "rope");
    cpu::rope(tensor_arg(info, 0, "rope"), tensor_arg(info, 1, "rope"), tensor_arg(info, 2, "rope"),
              static_cast<int>(int_arg(info, 3, "rope")), static_cast<int>(int_arg(info, 4, "rope")), info[5].ToBoolean());
    return info.Env().Undefined();
  });
}

// storeKv(kCache, vCache, k, v, slots): in place
Napi::Value StoreKv(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    need_args(info, 5, "storeKv");
    cpu::store_kv(tensor_arg(info, 0, "storeKv"), tensor_arg(info, 1, "storeKv"), tensor_arg(info, 2, "storeKv"),
                  tensor_arg(info, 3, "storeKv"), tensor_arg(info, 4, "storeKv"));
    return info.Env().Undefined();
  });
}

// pagedAttention(q, kCache, vCache, cuQ, kvLens, blockTables, numKvHeads, scale) -> like q
Napi::Value PagedAttention(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "pagedAttention";
    need_args(info, 8, op);
    Tensor& q = tensor_arg(info, 0, op);
    Tensor out = new_tensor(DType::F32, q.shape, true);
    cpu::paged_attention(q, tensor_arg(info, 1, op), tensor_arg(info, 2, op), tensor_arg(info, 3, op), tensor_arg(info, 4, op),
                         tensor_arg(info, 5, op), static_cast<int>(int_arg(info, 6, op)), static_cast<float>(num_arg(info, 7, op)), out);
    return handle(info, std::move(out));
  });
}

// siluMul(gate, up) -> like gate
Napi::Value SiluMul(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    need_args(info, 2, "siluMul");
    Tensor& g = tensor_arg(info, 0, "siluMul");
    Tensor out = new_tensor(DType::F32, g.shape, true);
    cpu::silu_mul(g, tensor_arg(info, 1, "siluMul"), out);
    return handle(info, std::move(out));
  });
}

// addInPlace(a, b): a += b
Napi::Value AddInPlace(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    need_args(info, 2, "addInPlace");
    cpu::add_inplace(tensor_arg(info, 0, "addInPlace"), tensor_arg(info, 1, "addInPlace"));
    return info.Env().Undefined();
  });
}

// gatherRows(x, idx) -> [n, D]
Napi::Value GatherRows(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    need_args(info, 2, "gatherRows");
    Tensor& x = tensor_arg(info, 0, "gatherRows");
    Tensor& idx = tensor_arg(info, 1, "gatherRows");
    const int64_t rows = x.dim(0);
    Tensor out = new_tensor(DType::F32, {idx.numel(), rows ? x.numel() / rows : 0}, true);
    cpu::gather_rows(x, idx, out);
    return handle(info, std::move(out));
  });
}

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("opEmbedding", Napi::Function::New(env, Embedding));
  exports.Set("opRmsNorm", Napi::Function::New(env, RmsNorm));
  exports.Set("opMatmul", Napi::Function::New(env, Matmul));
  exports.Set("opRope", Napi::Function::New(env, Rope));
  exports.Set("opStoreKv", Napi::Function::New(env, StoreKv));
  exports.Set("opPagedAttention", Napi::Function::New(env, PagedAttention));
  exports.Set("opSiluMul", Napi::Function::New(env, SiluMul));
  exports.Set("opAddInPlace", Napi::Function::New(env, AddInPlace));
  exports.Set("opGatherRows", Napi::Function::New(env, GatherRows));
}

}  // namespace

KT_REGISTER_EXPORTS(Register);
