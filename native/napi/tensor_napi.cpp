// Tensor handles for TypeScript: allocate, map from weight files, upload, download, release.
// These are the CPU's; the CUDA bindings (native/cuda/cuda_napi.cpp) share the table and the mappings.
#include <cstring>

#include "core/mapped_files.h"
#include "core/tensor_table.h"
#include "cpu/tensor.h"
#include "napi/napi_util.h"
#include "napi/registry.h"

namespace {

using namespace kt;
using namespace kt::napi;

// alloc(dtype, shape, scratch) -> handle
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    need_args(info, 3, "alloc");
    Tensor t = new_tensor(static_cast<DType>(int_arg(info, 0, "alloc")), shape_arg(info, 1, "alloc"), info[2].ToBoolean());
    return Napi::Number::New(info.Env(), tensors().add(std::move(t), Device::cpu()));
  });
}

// mapFile(path) -> mapping id; the file stays mapped while tensors view it or until unmapFile.
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    need_args(info, 1, "mapFile");
    return Napi::Number::New(info.Env(), mapped_files().map(info[0].ToString().Utf8Value()));
  });
}

Napi::Value UnmapFile(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    mapped_files().unmap(static_cast<int>(int_arg(info, 0, "unmapFile")));
    return info.Env().Undefined();
  });
}

// fromMapping(mapping, offset, dtype, shape) -> handle viewing the mapped bytes (no copy)
Napi::Value FromMapping(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "fromMapping";
    need_args(info, 4, op);
    const MappedFile& file = mapped_files().get(static_cast<int>(int_arg(info, 0, op)), op);
    const int64_t offset = int_arg(info, 1, op);
    Tensor t;
    t.dtype = static_cast<DType>(int_arg(info, 2, op));
    t.shape = shape_arg(info, 3, op);
    const TypeTraits* tr = type_traits(t.dtype);
    check(tr != nullptr, op, "unknown dtype");
    check(t.numel() % tr->block_elems == 0, op, "element count is not a whole number of blocks");
    t.nbytes = static_cast<size_t>(t.numel() / tr->block_elems * tr->block_bytes);
    check(offset >= 0 && static_cast<size_t>(offset) + t.nbytes <= file.size, op,
          "tensor " + t.describe() + " at offset " + std::to_string(offset) + " runs past the end of the file");
    t.owner = file.base;
    t.data = static_cast<uint8_t*>(file.base.get()) + offset;
    return Napi::Number::New(info.Env(), tensors().add(std::move(t), Device::cpu()));
  });
}

// upload(handle, typedArray): copies bytes into the tensor (sizes must agree).
Napi::Value Upload(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "upload";
    need_args(info, 2, op);
    Tensor& t = tensor_arg(info, 0, op);
    check(info[1].IsTypedArray(), op, "data must be a typed array");
    Napi::TypedArray a = info[1].As<Napi::TypedArray>();
    check(a.ByteLength() == t.nbytes, op, "data has " + std::to_string(a.ByteLength()) + " bytes, tensor " + t.describe() + " holds " + std::to_string(t.nbytes));
    std::memcpy(t.data, static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset(), t.nbytes);
    return info.Env().Undefined();
  });
}

// download(handle) -> Float32Array or Int32Array copy of the tensor.
Napi::Value Download(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "download";
    need_args(info, 1, op);
    Tensor& t = tensor_arg(info, 0, op);
    check(t.dtype == DType::F32 || t.dtype == DType::I32, op, "only F32 and I32 tensors download, got " + t.describe());
    const size_t n = static_cast<size_t>(t.numel());
    if (t.dtype == DType::I32) {
      auto out = Napi::Int32Array::New(info.Env(), n);
      std::memcpy(out.Data(), t.data, t.nbytes);
      return out;
    }
    auto out = Napi::Float32Array::New(info.Env(), n);
    std::memcpy(out.Data(), t.data, t.nbytes);
    return out;
  });
}

Napi::Value Release(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    tensors().release(handle_arg(info, 0, "release", DeviceKind::CPU), DeviceKind::CPU);
    return info.Env().Undefined();
  });
}

// tReleaseScratch(): frees the CPU's per-step tensors; CUDA ones wait for cudaReleaseScratch.
Napi::Value ReleaseScratch(const Napi::CallbackInfo& info) {
  tensors().release_scratch(Device::cpu());
  return info.Env().Undefined();
}

Napi::Object usage_object(Napi::Env env, TensorTable::Usage u) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("liveTensors", static_cast<double>(u.tensors));
  o.Set("liveBytes", static_cast<double>(u.bytes));
  return o;
}

// tStats(): the CPU's tensors; mappings are shared with the CUDA backend.
Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Object o = usage_object(info.Env(), tensors().usage(Device::cpu()));
  o.Set("mappings", static_cast<double>(mapped_files().count()));
  return o;
}

// tableStats() -> { liveTensors, liveBytes, mappings, devices: { cpu: {...}, 'cuda:0': {...} } }: the
// whole table, and each device that holds tensors.
Napi::Value TableStats(const Napi::CallbackInfo& info) {
  Napi::Object o = usage_object(info.Env(), tensors().usage());
  o.Set("mappings", static_cast<double>(mapped_files().count()));
  Napi::Object devices = Napi::Object::New(info.Env());
  for (Device d : tensors().devices()) devices.Set(d.name(), usage_object(info.Env(), tensors().usage(d)));
  o.Set("devices", devices);
  return o;
}

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("tAlloc", Napi::Function::New(env, Alloc));
  exports.Set("mapFile", Napi::Function::New(env, MapFile));
  exports.Set("unmapFile", Napi::Function::New(env, UnmapFile));
  exports.Set("tFromMapping", Napi::Function::New(env, FromMapping));
  exports.Set("tUpload", Napi::Function::New(env, Upload));
  exports.Set("tDownload", Napi::Function::New(env, Download));
  exports.Set("tRelease", Napi::Function::New(env, Release));
  exports.Set("tReleaseScratch", Napi::Function::New(env, ReleaseScratch));
  exports.Set("tStats", Napi::Function::New(env, Stats));
  exports.Set("tableStats", Napi::Function::New(env, TableStats));
}

}  // namespace

KT_REGISTER_EXPORTS(Register);
