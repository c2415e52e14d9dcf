// Bindings of the CUDA backend's memory and devices: tensors (alloc, weights from mapped
// files, upload, download, release), device facts, options, graph capture, and timing helpers.
// Exported with a `cuda` prefix; the ops are in cuda_ops_napi.cpp.
//
// Devices: a call with tensor arguments runs on their device. One without takes an optional
// last argument `device` (a CUDA ordinal, default 0) where it makes or runs something (alloc,
// fromMapping, capture, timers, deviceInfo); where it only looks after what exists (releaseScratch,
// stats, trimPool, synchronize) no device means every CUDA device, as the one CUDA table did.
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <unordered_map>

#include "core/mapped_files.h"
#include "core/tensor_table.h"
#include "cuda/cuda_common.h"
#include "cuda/device.h"
#include "cuda/napi_args.h"
#include "cuda/ops.h"
#include "napi/registry.h"

namespace {

using namespace kt::cuda;
using namespace kt::cuda::napi;
using kt::Device;
using kt::DeviceKind;
using kt::DType;
using kt::mapped_files;
using kt::MappedFile;
using kt::tensors;

// The devices a bookkeeping call covers: cuda:<argument i>, or (absent) every device created so far.
// Creates none and needs no GPU (stats work where CUDA cannot run).
std::vector<CudaDevice*> devices_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (info.Length() <= i || info[i].IsUndefined()) return created_devices();
  const int64_t ordinal = int_arg(info, i, op);
  std::vector<CudaDevice*> out;
  for (CudaDevice* d : created_devices())
    if (d->ordinal() == ordinal) out.push_back(d);
  return out;
}

// The same argument as a table filter: one device, or (absent) none, meaning every CUDA device.
std::optional<Device> device_filter(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (info.Length() <= i || info[i].IsUndefined()) return std::nullopt;
  return Device::cuda(static_cast<int>(int_arg(info, i, op)));
}

// The facts of the call's device (device_arg selected it, so cudaMemGetInfo reports its memory).
Napi::Object device_facts(Napi::Env env, int count, int dev) {
  Napi::Object o = Napi::Object::New(env);
  int runtime = 0, driver = 0;
  cudaDeviceProp p{};
  cudaGetDeviceProperties(&p, dev);
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  o.Set("count", count);
  o.Set("device", dev);
  o.Set("name", std::string(p.name));
  o.Set("computeCapability", std::to_string(p.major) + "." + std::to_string(p.minor));
  o.Set("multiprocessors", p.multiProcessorCount);
  o.Set("l2Bytes", p.l2CacheSize);
  o.Set("totalBytes", static_cast<double>(total_b));
  o.Set("freeBytes", static_cast<double>(free_b));
  o.Set("runtimeVersion", runtime);
  o.Set("driverVersion", driver);
  return o;
}

// cudaDeviceInfo(device?) -> { count, device, name, ... } or { count: 0, error } where no device is usable.
Napi::Value DeviceInfo(const Napi::CallbackInfo& info) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    cudaGetLastError();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("count", 0);
    o.Set("error", e != cudaSuccess ? std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e) : "no CUDA device");
    return o;
  }
  return guarded(info, [&]() -> Napi::Value { return device_facts(info.Env(), count, device_arg(info, 0, "cudaDeviceInfo")); });
}

// cudaAlloc(dtype, shape, scratch, device?) -> handle; persistent tensors start zeroed.
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    need_args(info, 3, "cudaAlloc");
    device_arg(info, 3, "cudaAlloc");
    return handle(info, new_device_tensor(static_cast<DType>(int_arg(info, 0, "cudaAlloc")), shape_arg(info, 1, "cudaAlloc"),
                                          info[2].ToBoolean()));
  });
}

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    need_args(info, 1, "cudaMapFile");
    return Napi::Number::New(info.Env(), mapped_files().map(info[0].ToString().Utf8Value()));
  });
}

Napi::Value UnmapFile(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    mapped_files().unmap(static_cast<int>(int_arg(info, 0, "cudaUnmapFile")));
    return info.Env().Undefined();
  });
}

// cudaFromMapping(mapping, offset, dtype, shape, device?) -> handle of a device copy of the bytes.
Napi::Value FromMapping(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaFromMapping";
    need_args(info, 4, op);
    const MappedFile& file = mapped_files().get(static_cast<int>(int_arg(info, 0, op)), op);
    device_arg(info, 4, op);
    const int64_t offset = int_arg(info, 1, op);
    const DType dtype = static_cast<DType>(int_arg(info, 2, op));
    DeviceTensor t = new_device_tensor(dtype, shape_arg(info, 3, op), false);
    check(offset >= 0 && static_cast<size_t>(offset) + t.nbytes <= file.size, op,
          "tensor " + t.describe() + " at offset " + std::to_string(offset) + " runs past the end of the file");
    const uint8_t* src = static_cast<const uint8_t*>(file.base.get()) + offset;
    check_cuda(cudaMemcpyAsync(t.data, src, t.nbytes, cudaMemcpyHostToDevice, stream()), "upload weight");
    return handle(info, std::move(t));
  });
}

// cudaUpload(handle, typedArray): copies host bytes in (sizes must agree); I32 data is also
// kept on the host so ops can validate indices without a sync.
Napi::Value Upload(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaUpload";
    need_args(info, 2, op);
    DeviceTensor& t = dev_arg(info, 0, op);
    check(info[1].IsTypedArray(), op, "data must be a typed array");
    Napi::TypedArray a = info[1].As<Napi::TypedArray>();
    // Fewer bytes than the tensor holds overwrite its start (a compact block table in a wide buffer).
    const size_t n = a.ByteLength();
    check(n <= t.nbytes && n > 0, op, "data has " + std::to_string(n) + " bytes, tensor " + t.describe() + " holds " + std::to_string(t.nbytes));
    const uint8_t* src = static_cast<const uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
    t.q8k.reset();  // new contents
    if (t.dtype == DType::I32) {
      t.host_i32.resize(static_cast<size_t>(t.numel()));
      std::memcpy(t.host_i32.data(), src, n);
    }
    // Pageable source: the call returns once the bytes are staged, so JS may reuse the array.
    check_cuda(cudaMemcpyAsync(t.data, src, n, cudaMemcpyHostToDevice, stream()), "upload");
    return info.Env().Undefined();
  });
}

// cudaUploadRepeat(handle, bytes): fills the tensor with copies of `bytes` (benchmarks).
Napi::Value UploadRepeat(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaUploadRepeat";
    need_args(info, 2, op);
    DeviceTensor& t = dev_arg(info, 0, op);
    check(info[1].IsTypedArray(), op, "data must be a typed array");
    Napi::TypedArray a = info[1].As<Napi::TypedArray>();
    const size_t n = a.ByteLength();
    check(n > 0 && n <= t.nbytes && t.nbytes % n == 0, op, "pattern size must divide the tensor's bytes");
    uint8_t* dst = t.as<uint8_t>();
    check_cuda(cudaMemcpyAsync(dst, static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset(), n, cudaMemcpyHostToDevice, stream()), op);
    for (size_t filled = n; filled < t.nbytes; filled *= 2)
      check_cuda(cudaMemcpyAsync(dst + filled, dst, std::min(filled, t.nbytes - filled), cudaMemcpyDeviceToDevice, stream()), op);
    return info.Env().Undefined();
  });
}

// cudaDownload(handle) -> Float32Array or Int32Array; waits for the stream (a step's one sync).
Napi::Value Download(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaDownload";
    need_args(info, 1, op);
    DeviceTensor& t = dev_arg(info, 0, op);
    check(t.dtype == DType::F32 || t.dtype == DType::I32, op, "only F32 and I32 tensors download, got " + t.describe());
    const size_t n = static_cast<size_t>(t.numel());
    Napi::TypedArray out;
    void* dst;
    if (t.dtype == DType::I32) {
      auto a = Napi::Int32Array::New(info.Env(), n);
      dst = a.Data();
      out = a;
    } else {
      auto a = Napi::Float32Array::New(info.Env(), n);
      dst = a.Data();
      out = a;
    }
    if (n) check_cuda(cudaMemcpyAsync(dst, t.data, t.nbytes, cudaMemcpyDeviceToHost, stream()), "download");
    check_cuda(cudaStreamSynchronize(stream()), "download (an earlier kernel failed)");
    return out;
  });
}

Napi::Value Release(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    tensors().release(handle_arg(info, 0, "cudaRelease", DeviceKind::CUDA), DeviceKind::CUDA);
    return info.Env().Undefined();
  });
}

// cudaReleaseScratch(device?): frees the per-step tensors of cuda:device, or of every CUDA device;
// never the CPU's (tReleaseScratch), so each backend's endStep frees its own.
Napi::Value ReleaseScratch(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const std::optional<Device> d = device_filter(info, 0, "cudaReleaseScratch");
    if (d) tensors().release_scratch(*d);
    else tensors().release_scratch(DeviceKind::CUDA);
    return info.Env().Undefined();
  });
}

// cudaPersist(handle): a per-step tensor becomes persistent (released only by cudaRelease).
Napi::Value Persist(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    tensors().persist(handle_arg(info, 0, "cudaPersist", DeviceKind::CUDA), DeviceKind::CUDA);
    return info.Env().Undefined();
  });
}

// cudaStats(device?): the tensors and pool of cuda:device, or of every CUDA device together.
Napi::Value Stats(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaStats";
    const std::optional<Device> d = device_filter(info, 0, op);
    const kt::TensorTable::Usage u = d ? tensors().usage(*d) : tensors().usage(DeviceKind::CUDA);
    size_t reserved = 0, in_use = 0;
    for (CudaDevice* dev : devices_arg(info, 0, op)) {
      reserved += dev->pool().reserved();
      in_use += dev->pool().in_use();
    }
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("liveTensors", static_cast<double>(u.tensors));
    o.Set("liveBytes", static_cast<double>(u.bytes));
    o.Set("mappings", static_cast<double>(mapped_files().count()));  // shared with the CPU (tStats)
    o.Set("poolReservedBytes", static_cast<double>(reserved));
    o.Set("poolInUseBytes", static_cast<double>(in_use));
    return o;
  });
}

// cudaTrimPool(device?): hands cached blocks back to the driver.
Napi::Value TrimPool(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    for (CudaDevice* dev : devices_arg(info, 0, "cudaTrimPool")) dev->pool().trim();
    return info.Env().Undefined();
  });
}

// cudaSynchronize(device?): waits for the stream of cuda:device, or of every CUDA device.
Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    for (CudaDevice* dev : devices_arg(info, 0, "cudaSynchronize")) {
      DeviceGuard on(dev->ordinal());
      check_cuda(cudaStreamSynchronize(dev->stream()), "synchronize");
    }
    return info.Env().Undefined();
  });
}

// cudaSetOptions({ precision: 'f32' | 'bf16', gemvMaxRows, gemvWarps, poison, pdl, … }); absent keys stay.
Napi::Value SetOptions(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaSetOptions";
    check(info.Length() >= 1 && info[0].IsObject(), op, "expected an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    Options& opts = options();
    if (o.Has("precision")) {
      const std::string p = o.Get("precision").ToString().Utf8Value();
      check(p == "f32" || p == "bf16", op, "precision must be 'f32' or 'bf16', got '" + p + "'");
      opts.precision = p == "f32" ? Precision::F32 : Precision::BF16;
    }
    if (o.Has("gemvMaxRows")) {
      const int64_t r = o.Get("gemvMaxRows").ToNumber().Int64Value();
      check(r >= -1 && r <= 4096, op, "gemvMaxRows must be in -1 (default) .. 4096");
      opts.gemv_max_rows = static_cast<int>(r);
    }
    if (o.Has("mmaMaxRows")) {
      const int64_t r = o.Get("mmaMaxRows").ToNumber().Int64Value();
      check(r >= -1 && r <= 65536, op, "mmaMaxRows must be in -1 (default) .. 65536");
      opts.mma_max_rows = static_cast<int>(r);
    }
    if (o.Has("mmaVariant")) {
      const int64_t r = o.Get("mmaVariant").ToNumber().Int64Value();
      check(r >= 0 && r <= 2, op, "mmaVariant must be 0, 1 or 2");
      opts.mma_variant = static_cast<int>(r);
    }
    if (o.Has("gemvWarps")) {
      const int64_t wv = o.Get("gemvWarps").ToNumber().Int64Value();
      check(wv == 0 || wv == 1 || wv == 2 || wv == 4, op, "gemvWarps must be 0 (by N), 1, 2 or 4");
      opts.gemv_warps = static_cast<int>(wv);
    }
    if (o.Has("attentionKernel")) {
      const int64_t r = o.Get("attentionKernel").ToNumber().Int64Value();
      check(r == 0 || r == 1, op, "attentionKernel must be 0 or 1");
      opts.attention_kernel = static_cast<int>(r);
    }
    if (o.Has("poison")) opts.poison = o.Get("poison").ToBoolean();
    if (o.Has("pdl")) opts.pdl = o.Get("pdl").ToBoolean();
    if (o.Has("gemvUnroll")) {
      const int64_t r = o.Get("gemvUnroll").ToNumber().Int64Value();
      check(r == 1 || r == 2, op, "gemvUnroll must be 1 or 2");
      opts.gemv_unroll = static_cast<int>(r);
    }
    if (o.Has("gemvW1Pairs")) {
      const int64_t r = o.Get("gemvW1Pairs").ToNumber().Int64Value();
      check(r >= 1 && r <= (1LL << 30), op, "gemvW1Pairs must be positive");
      opts.gemv_w1_pairs = static_cast<int>(r);
    }
    if (o.Has("attentionBlocksPerSm")) {
      const int64_t r = o.Get("attentionBlocksPerSm").ToNumber().Int64Value();
      check(r >= 1 && r <= 64, op, "attentionBlocksPerSm must be in 1 .. 64");
      opts.attention_blocks_per_sm = static_cast<int>(r);
    }
    if (o.Has("moeGemvMaxSlots")) {
      const int64_t r = o.Get("moeGemvMaxSlots").ToNumber().Int64Value();
      check(r >= -1 && r <= (1LL << 30), op, "moeGemvMaxSlots must be -1 (default) or a slot count");
      opts.moe_gemv_max_slots = static_cast<int>(r);
    }
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("precision", opts.precision == Precision::F32 ? "f32" : "bf16");
    out.Set("gemvMaxRows", opts.gemv_max_rows);
    out.Set("gemvWarps", opts.gemv_warps);
    out.Set("mmaMaxRows", opts.mma_max_rows);
    out.Set("mmaVariant", opts.mma_variant);
    out.Set("attentionKernel", opts.attention_kernel);
    out.Set("poison", opts.poison);
    out.Set("pdl", opts.pdl);
    out.Set("gemvUnroll", opts.gemv_unroll);
    out.Set("gemvW1Pairs", opts.gemv_w1_pairs);
    out.Set("attentionBlocksPerSm", opts.attention_blocks_per_sm);
    out.Set("moeGemvMaxSlots", opts.moe_gemv_max_slots);
    return out;
  });
}

// Event timer for benchmarks: cudaTimerStart(device?) ... cudaTimerStop(device?) -> milliseconds on
// that device's stream (events belong to a device: one pair each).
std::unordered_map<int, std::array<cudaEvent_t, 2>>& timer_events() {
  static std::unordered_map<int, std::array<cudaEvent_t, 2>> events;
  return events;
}

Napi::Value TimerStart(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const int dev = device_arg(info, 0, "cudaTimerStart");
    auto& ev = timer_events()[dev];
    for (cudaEvent_t& e : ev)
      if (!e) check_cuda(cudaEventCreate(&e), "timer");
    check_cuda(cudaEventRecord(ev[0], stream()), "timer start");
    return info.Env().Undefined();
  });
}

Napi::Value TimerStop(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const int dev = device_arg(info, 0, "cudaTimerStop");
    auto it = timer_events().find(dev);
    check(it != timer_events().end(), "cudaTimerStop", "cudaTimerStart was not called");
    auto& ev = it->second;
    check_cuda(cudaEventRecord(ev[1], stream()), "timer stop");
    check_cuda(cudaEventSynchronize(ev[1]), "timer stop (an earlier kernel failed)");
    float ms = 0.f;
    check_cuda(cudaEventElapsedTime(&ms, ev[0], ev[1]), "timer elapsed");
    return Napi::Number::New(info.Env(), ms);
  });
}

// CUDA graphs of whatever ops run on a device between cudaCaptureBegin(device?) and
// cudaCaptureEnd(device?) -> id; cudaGraphReplay(id) relaunches them with the same pointers (the
// engine's decode graphs, the benchmark's launch-gap-free timings). Ids are unique across devices.
Napi::Value CaptureBegin(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    device_arg(info, 0, "cudaCaptureBegin");
    current_device().capture_begin();
    return info.Env().Undefined();
  });
}

Napi::Value CaptureEnd(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    device_arg(info, 0, "cudaCaptureEnd");
    return Napi::Number::New(info.Env(), current_device().capture_end());
  });
}

Napi::Value GraphReplay(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const int id = static_cast<int>(int_arg(info, 0, "cudaGraphReplay"));
    CudaDevice* owner = graph_owner(id);
    check(owner != nullptr, "cudaGraphReplay", "unknown graph");
    owner->replay(id);
    return info.Env().Undefined();
  });
}

Napi::Value GraphRelease(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const int id = static_cast<int>(int_arg(info, 0, "cudaGraphRelease"));
    if (CudaDevice* owner = graph_owner(id)) owner->release_graph(id);
    return info.Env().Undefined();
  });
}

// cudaCopyBandwidth(bytes, reps, device?) -> GB/s of a device-to-device copy, bytes read + written.
Napi::Value CopyBandwidth(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaCopyBandwidth";
    need_args(info, 2, op);
    device_arg(info, 2, op);
    const size_t bytes = static_cast<size_t>(int_arg(info, 0, op));
    const int reps = static_cast<int>(int_arg(info, 1, op));
    check(bytes > 0 && reps > 0, op, "bytes and reps must be positive");
    auto a = pool().alloc(bytes), b = pool().alloc(bytes);
    check_cuda(cudaMemsetAsync(a.get(), 0x5a, bytes, stream()), op);
    check_cuda(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, stream()), op);  // warm-up
    cudaEvent_t e0, e1;
    check_cuda(cudaEventCreate(&e0), op);
    check_cuda(cudaEventCreate(&e1), op);
    check_cuda(cudaEventRecord(e0, stream()), op);
    for (int i = 0; i < reps; ++i)
      check_cuda(cudaMemcpyAsync(i % 2 ? a.get() : b.get(), i % 2 ? b.get() : a.get(), bytes, cudaMemcpyDeviceToDevice, stream()), op);
    check_cuda(cudaEventRecord(e1, stream()), op);
    check_cuda(cudaEventSynchronize(e1), op);
    float ms = 0.f;
    cudaEventElapsedTime(&ms, e0, e1);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return Napi::Number::New(info.Env(), 2.0 * static_cast<double>(bytes) * reps / (ms * 1e-3) / 1e9);
  });
}

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaDeviceInfo", Napi::Function::New(env, DeviceInfo));
  exports.Set("cudaAlloc", Napi::Function::New(env, Alloc));
  exports.Set("cudaMapFile", Napi::Function::New(env, MapFile));
  exports.Set("cudaUnmapFile", Napi::Function::New(env, UnmapFile));
  exports.Set("cudaFromMapping", Napi::Function::New(env, FromMapping));
  exports.Set("cudaUpload", Napi::Function::New(env, Upload));
  exports.Set("cudaUploadRepeat", Napi::Function::New(env, UploadRepeat));
  exports.Set("cudaDownload", Napi::Function::New(env, Download));
  exports.Set("cudaRelease", Napi::Function::New(env, Release));
  exports.Set("cudaReleaseScratch", Napi::Function::New(env, ReleaseScratch));
  exports.Set("cudaPersist", Napi::Function::New(env, Persist));
  exports.Set("cudaStats", Napi::Function::New(env, Stats));
  exports.Set("cudaTrimPool", Napi::Function::New(env, TrimPool));
  exports.Set("cudaSynchronize", Napi::Function::New(env, Synchronize));
  exports.Set("cudaSetOptions", Napi::Function::New(env, SetOptions));
  exports.Set("cudaTimerStart", Napi::Function::New(env, TimerStart));
  exports.Set("cudaTimerStop", Napi::Function::New(env, TimerStop));
  exports.Set("cudaCopyBandwidth", Napi::Function::New(env, CopyBandwidth));
  exports.Set("cudaCaptureBegin", Napi::Function::New(env, CaptureBegin));
  exports.Set("cudaCaptureEnd", Napi::Function::New(env, CaptureEnd));
  exports.Set("cudaGraphReplay", Napi::Function::New(env, GraphReplay));
  exports.Set("cudaGraphRelease", Napi::Function::New(env, GraphRelease));
}

}  // namespace

KT_REGISTER_EXPORTS(Register);
