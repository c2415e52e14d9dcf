// Argument readers for the CUDA bindings: device tensor handles, with errors naming the op, and
// the device a call runs on. Each binding's guarded() (below) opens a CallDevice: the first
// tensor argument (dev_arg) makes its device current for the call, so new tensors, the pool and
// the kernels' stream() are that device's, and every later tensor argument must be on it.
#pragma once
#include <napi.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "core/tensor_table.h"
#include "cuda/device.h"
#include "cuda/device_tensor.h"
#include "napi/napi_util.h"

namespace kt::cuda::napi {

using kt::napi::handle_arg;
using kt::napi::int_arg;
using kt::napi::need_args;
using kt::napi::num_arg;
using kt::napi::shape_arg;

class CallDevice {
 public:
  CallDevice() : outer_(active_) { active_ = this; }
  ~CallDevice() { active_ = outer_; }
  CallDevice(const CallDevice&) = delete;
  CallDevice& operator=(const CallDevice&) = delete;

  // Tensor `handle`, on device d, is an argument of op: the first one picks the call's device.
  static void bind_tensor(int handle, Device d, const char* op) {
    CallDevice* c = active_;
    if (c && c->guard_) return c->check_same(handle, d, op);
    if (d.kind != DeviceKind::CUDA) throw std::invalid_argument(std::string(op) + ": " + wrong_device_kind(handle, d, DeviceKind::CUDA));
    if (c) return c->bind(d, handle);
    // Outside a CallDevice (a binding that skipped guarded()): only the current device is safe.
    if (d.ordinal != current_ordinal()) throw std::invalid_argument(mismatch(op, handle, d, -1, Device::cuda(current_ordinal())));
  }

  // A call with no tensor arguments runs on cuda:ordinal.
  static void bind_ordinal(int ordinal) {
    if (active_ && !active_->guard_) active_->bind(Device::cuda(ordinal), -1);
  }

 private:
  void bind(Device d, int first) {
    guard_.emplace(d.ordinal);
    device_ = d;
    first_ = first;
  }
  void check_same(int handle, Device d, const char* op) const {
    if (d != device_) throw std::invalid_argument(mismatch(op, handle, d, first_, device_));
  }
  // "op: tensor 12 is on cpu, tensor 7 on cuda:0" (or "..., the call runs on cuda:0" where no tensor picked it)
  static std::string mismatch(const char* op, int handle, Device d, int first, Device bound) {
    const std::string other = first >= 0 ? "tensor " + std::to_string(first) + " on " : "the call runs on ";
    return std::string(op) + ": tensor " + std::to_string(handle) + " is on " + d.name() + ", " + other + bound.name();
  }

  std::optional<DeviceGuard> guard_;  // set once the call's device is known
  Device device_;
  int first_ = -1;  // the tensor that picked it, or -1 (a device argument)
  CallDevice* outer_;
  static inline thread_local CallDevice* active_ = nullptr;
};

// kt::napi::guarded (C++ exceptions become JS errors) with the call's CallDevice around fn.
template <typename Fn>
Napi::Value guarded(const Napi::CallbackInfo& info, Fn&& fn) {
  return kt::napi::guarded(info, [&]() -> Napi::Value {
    CallDevice call;
    return fn();
  });
}

// The CUDA tensor of handle argument i; its device becomes the call's (see CallDevice).
inline DeviceTensor& dev_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  const kt::napi::HandleArg h = kt::napi::live_handle_arg(info, i, op);
  CallDevice::bind_tensor(h.id, h.device, op);
  return tensors().get<DeviceTensor>(h.id);
}

// The optional device ordinal at argument i (absent or undefined: kDefaultDevice), checked against
// the visible devices; a call with no tensor arguments then runs on it.
inline int device_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (info.Length() <= i || info[i].IsUndefined()) {
    CallDevice::bind_ordinal(kDefaultDevice);
    return kDefaultDevice;
  }
  const int64_t ordinal = int_arg(info, i, op);
  const int count = device_count();
  if (ordinal < 0 || ordinal >= count)
    throw std::invalid_argument(std::string(op) + ": no CUDA device " + std::to_string(ordinal) + " (" + std::to_string(count) + " visible)");
  CallDevice::bind_ordinal(static_cast<int>(ordinal));
  return static_cast<int>(ordinal);
}

// A new tensor's handle, tagged with the device whose pool holds it.
inline Napi::Number handle(const Napi::CallbackInfo& info, DeviceTensor t) {
  const Device d = Device::cuda(t.device);
  return Napi::Number::New(info.Env(), tensors().add(std::move(t), d));
}

}  // namespace kt::cuda::napi
