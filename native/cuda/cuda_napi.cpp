// Bindings of the CUDA backend's memory and device: tensors (alloc, weights from mapped
// files, upload, download, release), device facts, options, graph capture, and timing helpers.
// Exported with a `cuda` prefix; the ops are in cuda_ops_napi.cpp.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "cpu/tensor.h"
#include "cuda/cuda_common.h"
#include "cuda/napi_args.h"
#include "cuda/ops.h"
#include "napi/registry.h"

namespace {

using namespace kt::cuda;
using namespace kt::cuda::napi;
using kt::DType;

struct MappedFile {
  std::shared_ptr<void> base;
  size_t size = 0;
};
std::unordered_map<int, MappedFile>& mappings() {
  static std::unordered_map<int, MappedFile> m;
  return m;
}
int next_mapping = 1;

}  // namespace

// The bytes of a mapping made by cudaMapFile (napi_args.h), or null for an unknown id.
const uint8_t* kt::cuda::napi::mapped_bytes(int id, size_t* size) {
  auto it = mappings().find(id);
  if (it == mappings().end()) return nullptr;
  *size = it->second.size;
  return static_cast<const uint8_t*>(it->second.base.get());
}

namespace {

// cudaDeviceInfo() -> { count, name, ... } or { count: 0, error } where no device is usable.
Napi::Value DeviceInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    cudaGetLastError();
    o.Set("count", 0);
    o.Set("error", e != cudaSuccess ? std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e) : "no CUDA device");
    return o;
  }
  int dev = 0, runtime = 0, driver = 0;
  cudaGetDevice(&dev);
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

// cudaAlloc(dtype, shape, scratch) -> handle; persistent tensors start zeroed.
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    need_args(info, 3, "cudaAlloc");
    return handle(info, new_device_tensor(static_cast<DType>(int_arg(info, 0, "cudaAlloc")), shape_arg(info, 1, "cudaAlloc"),
                                          info[2].ToBoolean()));
  });
}

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    need_args(info, 1, "cudaMapFile");
    MappedFile m;
    m.base = kt::map_file(info[0].ToString().Utf8Value(), &m.size);
    const int id = next_mapping++;
    mappings()[id] = std::move(m);
    return Napi::Number::New(info.Env(), id);
  });
}

Napi::Value UnmapFile(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    mappings().erase(static_cast<int>(int_arg(info, 0, "cudaUnmapFile")));
    return info.Env().Undefined();
  });
}

// cudaFromMapping(mapping, offset, dtype, shape) -> handle of a device copy of the bytes.
Napi::Value FromMapping(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaFromMapping";
    need_args(info, 4, op);
    auto it = mappings().find(static_cast<int>(int_arg(info, 0, op)));
    check(it != mappings().end(), op, "unknown file mapping");
    const int64_t offset = int_arg(info, 1, op);
    const DType dtype = static_cast<DType>(int_arg(info, 2, op));
    DeviceTensor t = new_device_tensor(dtype, shape_arg(info, 3, op), false);
    check(offset >= 0 && static_cast<size_t>(offset) + t.nbytes <= it->second.size, op,
          "tensor " + t.describe() + " at offset " + std::to_string(offset) + " runs past the end of the file");
    const uint8_t* src = static_cast<const uint8_t*>(it->second.base.get()) + offset;
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
    device_tensors().release(static_cast<int>(int_arg(info, 0, "cudaRelease")));
    return info.Env().Undefined();
  });
}

Napi::Value ReleaseScratch(const Napi::CallbackInfo& info) {
  device_tensors().release_scratch();
  return info.Env().Undefined();
}

// cudaPersist(handle): a per-step tensor becomes persistent (released only by cudaRelease).
Napi::Value Persist(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    device_tensors().persist(static_cast<int>(int_arg(info, 0, "cudaPersist")));
    return info.Env().Undefined();
  });
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("liveTensors", static_cast<double>(device_tensors().live_count()));
  o.Set("liveBytes", static_cast<double>(device_tensors().live_bytes()));
  o.Set("mappings", static_cast<double>(mappings().size()));
  o.Set("poolReservedBytes", static_cast<double>(pool().reserved()));
  o.Set("poolInUseBytes", static_cast<double>(pool().in_use()));
  return o;
}

Napi::Value TrimPool(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    pool().trim();
    return info.Env().Undefined();
  });
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    check_cuda(cudaStreamSynchronize(stream()), "synchronize");
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

// Event timer for benchmarks: cudaTimerStart() ... cudaTimerStop() -> milliseconds on the stream.
cudaEvent_t timer_events[2] = {nullptr, nullptr};

Napi::Value TimerStart(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    for (cudaEvent_t& e : timer_events)
      if (!e) check_cuda(cudaEventCreate(&e), "timer");
    check_cuda(cudaEventRecord(timer_events[0], stream()), "timer start");
    return info.Env().Undefined();
  });
}

Napi::Value TimerStop(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    check(timer_events[0] != nullptr, "cudaTimerStop", "cudaTimerStart was not called");
    check_cuda(cudaEventRecord(timer_events[1], stream()), "timer stop");
    check_cuda(cudaEventSynchronize(timer_events[1]), "timer stop (an earlier kernel failed)");
    float ms = 0.f;
    check_cuda(cudaEventElapsedTime(&ms, timer_events[0], timer_events[1]), "timer elapsed");
    return Napi::Number::New(info.Env(), ms);
  });
}

// CUDA graphs of whatever ops run between cudaCaptureBegin() and cudaCaptureEnd() -> id;
// cudaGraphReplay(id) relaunches them with the same pointers (the benchmark times kernels
// without launch gaps this way; the engine's graphs for variable batch sizes will build on it).
std::unordered_map<int, cudaGraphExec_t>& graphs() {
  static std::unordered_map<int, cudaGraphExec_t> g;
  return g;
}
int next_graph = 1;

Napi::Value CaptureBegin(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    // Relaxed: the pool may still cudaMalloc a block it has not cached yet while capturing.
    split_counters(0);  // allocated and zeroed outside the capture
    check_cuda(cudaStreamBeginCapture(stream(), cudaStreamCaptureModeRelaxed), "capture begin");
    pool().set_capturing(true);
    return info.Env().Undefined();
  });
}

Napi::Value CaptureEnd(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    cudaGraph_t graph = nullptr;
    pool().set_capturing(false);
    check_cuda(cudaStreamEndCapture(stream(), &graph), "capture end");
    cudaGraphExec_t exec = nullptr;
    const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    check_cuda(e, "graph instantiate");
    const int id = next_graph++;
    graphs()[id] = exec;
    pool().add_graph_ref(1);
    return Napi::Number::New(info.Env(), id);
  });
}

Napi::Value GraphReplay(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto it = graphs().find(static_cast<int>(int_arg(info, 0, "cudaGraphReplay")));
    check(it != graphs().end(), "cudaGraphReplay", "unknown graph");
    check_cuda(cudaGraphLaunch(it->second, stream()), "graph launch");
    return info.Env().Undefined();
  });
}

Napi::Value GraphRelease(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto it = graphs().find(static_cast<int>(int_arg(info, 0, "cudaGraphRelease")));
    if (it != graphs().end()) {
      cudaGraphExecDestroy(it->second);
      graphs().erase(it);
      pool().add_graph_ref(-1);
    }
    return info.Env().Undefined();
  });
}

// cudaCopyBandwidth(bytes, reps) -> GB/s of a device-to-device copy, bytes read + written.
Napi::Value CopyBandwidth(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "cudaCopyBandwidth";
    need_args(info, 2, op);
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
