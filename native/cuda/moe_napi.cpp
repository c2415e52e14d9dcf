// Bindings of the MoE ops (moe.h) with the CPU ops' argument lists (opMoeRoute, opMoeExperts,
// tStackMappings) under cuda names: cudaOpMoeRoute -> [ids, weights], cudaOpMoeExperts -> out,
// cudaStackMappings -> a persistent [E, N, K] tensor uploaded one expert slice at a time.
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "core/mapped_files.h"
#include "cuda/cuda_common.h"
#include "cuda/moe.h"
#include "cuda/napi_args.h"
#include "napi/registry.h"

namespace {

using namespace kt::cuda;
using namespace kt::cuda::napi;
using kt::DType;

// cudaOpMoeRoute(logits [T, E], bias [E] | -1, scoring (0 softmax, 1 sigmoid), topK, numGroups, topKGroups,
// groupScore (0 max, 1 top2sum), normalize, scale) -> [ids I32 [T, k], weights F32 [T, k]]
Napi::Value MoeRoute(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaOpMoeRoute";
    need_args(info, 9, op);
    DeviceTensor& logits = dev_arg(info, 0, op);
    const DeviceTensor* bias = int_arg(info, 1, op) < 0 ? nullptr : &dev_arg(info, 1, op);
    const int64_t scoring = int_arg(info, 2, op), group_score = int_arg(info, 6, op);
    check(scoring == 0 || scoring == 1, op, "scoring must be 0 (softmax) or 1 (sigmoid)");
    check(group_score == 0 || group_score == 1, op, "groupScore must be 0 (max) or 1 (top2sum)");
    MoeRouteSpec s;
    s.sigmoid = scoring == 1;
    s.top_k = static_cast<int>(int_arg(info, 3, op));
    s.num_groups = static_cast<int>(int_arg(info, 4, op));
    s.top_k_groups = static_cast<int>(int_arg(info, 5, op));
    s.top2sum = group_score == 1;
    s.normalize = info[7].ToBoolean().Value();
    s.scale = static_cast<float>(num_arg(info, 8, op));
    check(logits.shape.size() == 2, "moe_route", "logits must be F32 [T, E], got " + logits.describe());
    check(s.top_k >= 1 && s.top_k <= 32, "moe_route", "top_k must be in 1 .. min(32, E), got " + std::to_string(s.top_k));
    const int64_t T = logits.shape[0];
    DeviceTensor ids = new_device_tensor(DType::I32, {T, s.top_k}, true);
    DeviceTensor weights = new_device_tensor(DType::F32, {T, s.top_k}, true);
    moe_route(logits, bias, s, ids, weights);
    Napi::Array out = Napi::Array::New(info.Env(), 2);
    out.Set(0u, handle(info, std::move(ids)));
    out.Set(1u, handle(info, std::move(weights)));
    return out;
  });
}

// cudaOpMoeExperts(x [T, H], ids I32 [T, k], weights F32 [T, k], gate [E, I, H], up [E, I, H], down [E, H, I]) -> [T, H]
Napi::Value MoeExperts(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaOpMoeExperts";
    need_args(info, 6, op);
    DeviceTensor& x = dev_arg(info, 0, op);
    check(x.shape.size() == 2, "moe_experts", "x must be F32 [T, H], got " + x.describe());
    DeviceTensor out = new_device_tensor(DType::F32, x.shape, true);
    moe_experts(x, dev_arg(info, 1, op), dev_arg(info, 2, op), dev_arg(info, 3, op), dev_arg(info, 4, op), dev_arg(info, 5, op), out);
    return handle(info, std::move(out));
  });
}

// cudaStackMappings(mappings[], offsets[], dtype, shape [E, N, K]) -> persistent handle: slice e (nbytes / E
// bytes, expert e's rows) copied from mapping e at offset e (Hugging Face files keep each expert apart).
Napi::Value StackMappings(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaStackMappings";
    need_args(info, 4, op);
    const std::vector<int64_t> maps = kt::napi::int_list_arg(info, 0, op, "mappings", 0, INT32_MAX);
    const std::vector<int64_t> offsets = kt::napi::int_list_arg(info, 1, op, "offsets", 0, int64_t{1} << 53);
    const std::vector<int64_t> shape = shape_arg(info, 3, op);
    const DType dtype = static_cast<DType>(int_arg(info, 2, op));
    const kt::StackSources s = kt::stack_sources(maps, offsets, dtype, shape, op);  // all checked before anything is allocated
    device_arg(info, 4, op);  // no tensor argument picks the device: the trailing ordinal does (default 0)
    DeviceTensor t = new_device_tensor(dtype, shape, false);
    for (size_t e = 0; e < s.src.size(); ++e) {
      check_cuda(cudaMemcpyAsync(t.as<uint8_t>() + e * s.slice, s.src[e], s.slice, cudaMemcpyHostToDevice, stream()), "upload expert slice");
    }
    return handle(info, std::move(t));
  });
}

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaOpMoeRoute", Napi::Function::New(env, MoeRoute));
  exports.Set("cudaOpMoeExperts", Napi::Function::New(env, MoeExperts));
  exports.Set("cudaStackMappings", Napi::Function::New(env, StackMappings));
}

}  // namespace

KT_REGISTER_EXPORTS(Register);
