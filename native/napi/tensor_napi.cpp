// Tensor handles for TypeScript: allocate, map from weight files, upload, download, release.
#include <cstring>

#include "cpu/tensor.h"
#include "napi/napi_util.h"
#include "napi/registry.h"

namespace kt::napi {

std::unordered_map<int, MappedFile>& mappings() {
  static std::unordered_map<int, MappedFile> m;
  return m;
}

}  // namespace kt::napi

namespace {

using namespace kt;
using namespace kt::napi;

int next_mapping = 1;

// alloc(dtype, shape, scratch) -> handle
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    need_args(info, 3, "alloc");
    Tensor t = new_tensor(static_cast<DType>(int_arg(info, 0, "alloc")), shape_arg(info, 1, "alloc"), info[2].ToBoolean());
    return Napi::Number::New(info.Env(), tensors().add(std::move(t)));
  });
}

// mapFile(path) -> mapping id; the file stays mapped while tensors view it or until unmapFile.
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    need_args(info, 1, "mapFile");
    MappedFile m;
    m.base = map_file(info[0].ToString().Utf8Value(), &m.size);
    int id = next_mapping++;
    mappings()[id] = std::move(m);
    return Napi::Number::New(info.Env(), id);
  });
}

Napi::Value UnmapFile(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    mappings().erase(static_cast<int>(int_arg(info, 0, "unmapFile")));
    return info.Env().Undefined();
  });
}

// fromMapping(mapping, offset, dtype, shape) -> handle viewing the mapped bytes (no copy)
Napi::Value FromMapping(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* op = "fromMapping";
    need_args(info, 4, op);
    auto it = mappings().find(static_cast<int>(int_arg(info, 0, op)));
    check(it != mappings().end(), op, "unknown file mapping");
    const int64_t offset = int_arg(info, 1, op);
    Tensor t;
    t.dtype = static_cast<DType>(int_arg(info, 2, op));
    t.shape = shape_arg(info, 3, op);
    const TypeTraits* tr = type_traits(t.dtype);
    check(tr != nullptr, op, "unknown dtype");
    check(t.numel() % tr->block_elems == 0, op, "element count is not a whole number of blocks");
    t.nbytes = static_cast<size_t>(t.numel() / tr->block_elems * tr->block_bytes);
    check(offset >= 0 && static_cast<size_t>(offset) + t.nbytes <= it->second.size, op,
          "tensor " + t.describe() + " at offset " + std::to_string(offset) + " runs past the end of the file");
    t.owner = it->second.base;
    t.data = static_cast<uint8_t*>(it->second.base.get()) + offset;
    return Napi::Number::New(info.Env(), tensors().add(std::move(t)));
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
    tensors().release(static_cast<int>(int_arg(info, 0, "release")));
    return info.Env().Undefined();
  });
}

Napi::Value ReleaseScratch(const Napi::CallbackInfo& info) {
  tensors().release_scratch();
  return info.Env().Undefined();
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("liveTensors", static_cast<double>(tensors().live_count()));
  o.Set("liveBytes", static_cast<double>(tensors().live_bytes()));
  o.Set("mappings", static_cast<double>(mappings().size()));
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
}

}  // namespace

KT_REGISTER_EXPORTS(Register);
