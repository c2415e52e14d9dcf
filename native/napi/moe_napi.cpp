// Bindings of the MoE ops (cpu/op_moe.cpp), and the stacking of experts stored apart (Hugging
// Face safetensors) into the one [E, N, K] weight tensor per projection the ops take.
#include <cmath>
#include <cstring>

#include "cpu/ops.h"
#include "core/mapped_files.h"
#include "napi/napi_util.h"
#include "napi/registry.h"

namespace {

using namespace kt;
using namespace kt::napi;
using kt::cpu::MoeGroupScore;
using kt::cpu::MoeRouteSpec;
using kt::cpu::MoeScoring;

Napi::Number handle(const Napi::CallbackInfo& info, Tensor t) { return Napi::Number::New(info.Env(), tensors().add(std::move(t), Device::cpu())); }

// opMoeRoute(logits, bias /* -1: none */, scoring /* 0 softmax, 1 sigmoid */, topK, numGroups, topKGroups,
//            groupScore /* 0 max, 1 top2sum */, normalize, scale) -> [ids I32 [T, k], weights F32 [T, k]]
Napi::Value MoeRoute(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "opMoeRoute";
    need_args(info, 9, op);
    const Tensor& logits = tensor_arg(info, 0, op);
    check(logits.dtype == DType::F32 && logits.shape.size() == 2, op, "logits must be F32 [T, E], got " + logits.describe());
    const int64_t T = logits.shape[0], E = logits.shape[1];
    const Tensor* bias = int_arg(info, 1, op) == -1 ? nullptr : &tensor_arg(info, 1, op);
    MoeRouteSpec sp{};
    sp.scoring = static_cast<MoeScoring>(int_in(info[2], op, "scoring", 0, 1));
    sp.top_k = static_cast<int>(int_in(info[3], op, "topK", 1, std::max<int64_t>(E, 1)));
    sp.num_groups = static_cast<int>(int_in(info[4], op, "numGroups", 1, std::max<int64_t>(E, 1)));
    sp.top_k_groups = static_cast<int>(int_in(info[5], op, "topKGroups", 1, sp.num_groups));
    sp.group_score = static_cast<MoeGroupScore>(int_in(info[6], op, "groupScore", 0, 1));
    sp.normalize = info[7].ToBoolean();
    sp.scale = static_cast<float>(num_arg(info, 8, op));
    Tensor ids = new_tensor(DType::I32, {T, sp.top_k}, true);
    Tensor weights = new_tensor(DType::F32, {T, sp.top_k}, true);
    cpu::moe_route(logits, bias, sp, ids, weights);
    Napi::Array out = Napi::Array::New(info.Env(), 2);
    out.Set(0u, handle(info, std::move(ids)));
    out.Set(1u, handle(info, std::move(weights)));
    return out;
  });
}

// opMoeExperts(x [T, H], ids I32 [T, k], weights F32 [T, k], gate [E, I, H], up [E, I, H], down [E, H, I]) -> [T, H]
Napi::Value MoeExperts(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "opMoeExperts";
    need_args(info, 6, op);
    const Tensor& x = tensor_arg(info, 0, op);
    check(x.shape.size() == 2, op, "x must be F32 [T, H], got " + x.describe());
    Tensor out = new_tensor(DType::F32, x.shape, true);
    cpu::moe_experts(x, tensor_arg(info, 1, op), tensor_arg(info, 2, op), tensor_arg(info, 3, op), tensor_arg(info, 4, op),
                     tensor_arg(info, 5, op), out);
    return handle(info, std::move(out));
  });
}

// tStackMappings(mappings: number[], offsets: number[], dtype, shape [E, N, K]) -> persistent handle:
// expert e's N*K elements (nbytes / E bytes) copied from mapping e at offset e.
Napi::Value StackMappings(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "tStackMappings";
    need_args(info, 4, op);
    const std::vector<int64_t> maps = int_list_arg(info, 0, op, "mappings", 0, INT32_MAX);
    const std::vector<int64_t> offsets = int_list_arg(info, 1, op, "offsets", 0, int64_t{1} << 53);
    const DType dtype = static_cast<DType>(int_in(info[2], op, "dtype", 0, 255));
    const std::vector<int64_t> shape = shape_arg(info, 3, op);
    const StackSources s = stack_sources(maps, offsets, dtype, shape, op);  // all checked before anything is allocated
    Tensor t = new_tensor(dtype, shape, false);
    for (size_t e = 0; e < s.src.size(); ++e) std::memcpy(t.as<uint8_t>() + e * s.slice, s.src[e], s.slice);
    return handle(info, std::move(t));
  });
}

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("opMoeRoute", Napi::Function::New(env, MoeRoute));
  exports.Set("opMoeExperts", Napi::Function::New(env, MoeExperts));
  exports.Set("tStackMappings", Napi::Function::New(env, StackMappings));
}

}  // namespace

KT_REGISTER_EXPORTS(Register);
