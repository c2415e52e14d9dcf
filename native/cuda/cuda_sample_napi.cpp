// Bindings of the device sampler (sample.cu): cudaOpSample(logits, params, seeds) -> handle of a new
// per-step I32 [B] tensor of token ids; and of the penalties before it (penalties.cu), in place.
#include "cuda/napi_args.h"
#include "cuda/ops.h"
#include "napi/registry.h"

namespace {

using namespace kt::cuda;
using namespace kt::cuda::napi;
using kt::DType;

// cudaOpSample(logits F32 [B, V], params F32 [B, 4] (temperature, topK, topP, minP), seeds I32 [B, 2]
// (seed, counter)) -> I32 [B]
Napi::Value Sample(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaOpSample";
    need_args(info, 3, op);
    DeviceTensor& logits = dev_arg(info, 0, op);
    DeviceTensor& params = dev_arg(info, 1, op);
    DeviceTensor& seeds = dev_arg(info, 2, op);
    check(logits.shape.size() == 2, "sample", "logits must be F32 [B, V], got " + logits.describe());
    DeviceTensor out = new_device_tensor(DType::I32, {logits.shape[0]}, true);
    sample(logits, params, seeds, out);
    return handle(info, std::move(out));
  });
}

// cudaOpApplyPenalties(logits F32 [B, V], index I32 [cap, 2] (row, token), values F32 [cap, 3] (bias,
// repetition, subtract), count I32 [1]): logits modified in place
Napi::Value ApplyPenalties(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaOpApplyPenalties";
    need_args(info, 4, op);
    apply_penalties(dev_arg(info, 0, op), dev_arg(info, 1, op), dev_arg(info, 2, op), dev_arg(info, 3, op));
    return info.Env().Undefined();
  });
}

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaOpSample", Napi::Function::New(env, Sample));
  exports.Set("cudaOpApplyPenalties", Napi::Function::New(env, ApplyPenalties));
}

}  // namespace

KT_REGISTER_EXPORTS(Register);
