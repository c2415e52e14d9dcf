// The one table of tensor handles TypeScript holds, for every device: CPU tensors (kt::Tensor)
// and CUDA tensors (kt::cuda::DeviceTensor) share one handle space, and each entry records its
// device, so a handle given to an op of another device is an error, never reinterpreted memory.
#pragma once
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/device.h"

namespace kt {

// "tensor 7 is on cuda:0, not on the cpu"
std::string wrong_device_kind(int id, Device on, DeviceKind want);

class TensorTable {
 public:
  // Adds t, made on device d, and returns its handle. T names its device kind (T::kDeviceKind);
  // scratch tensors (t.scratch) die at the next release_scratch of their device.
  template <typename T>
  int add(T t, Device d) {
    if (d.kind != T::kDeviceKind) throw std::logic_error("tensor table: a tensor tagged " + d.name() + ", a device of another kind");
    const bool scratch = t.scratch;
    const size_t nbytes = t.nbytes;
    return insert(std::make_unique<HeldAs<T>>(std::move(t)), d, scratch, nbytes);
  }

  // The tensor of a live handle; std::invalid_argument if the handle is not live or its tensor is
  // on a device of another kind than T's. The reference stays valid until the handle is released.
  template <typename T>
  T& get(int id) {
    const Entry& e = entry(id);
    if (e.device.kind != T::kDeviceKind) throw std::invalid_argument(wrong_device_kind(id, e.device, T::kDeviceKind));
    return static_cast<HeldAs<T>&>(*e.held).tensor;
  }

  // The device of a live handle; std::invalid_argument("invalid or released tensor handle N") otherwise.
  Device device_of(int id) const { return entry(id).device; }
  // Releases a live handle, which must be on a device of kind `kind` (tRelease frees no CUDA tensor).
  void release(int id, DeviceKind kind);
  // Frees the scratch tensors of device d only: each backend's endStep frees its own per-step tensors.
  void release_scratch(Device d);
  // The same for every device of a kind (cudaReleaseScratch without a device: every GPU's).
  void release_scratch(DeviceKind kind);
  // A scratch tensor survives release_scratch (a graph's output); its kind is checked as in release().
  void persist(int id, DeviceKind kind);

  struct Usage {
    size_t tensors = 0, bytes = 0;
  };
  Usage usage() const;                 // the whole table
  Usage usage(Device d) const;         // one device
  Usage usage(DeviceKind kind) const;  // every device of a kind
  std::vector<Device> devices() const;  // the devices that hold live tensors, CPU first

 private:
  struct Held {
    virtual ~Held() = default;
  };
  template <typename T>
  struct HeldAs final : Held {
    explicit HeldAs(T t) : tensor(std::move(t)) {}
    T tensor;
  };
  struct Entry {
    std::unique_ptr<Held> held;  // null: a free slot
    Device device;
    bool scratch = false;
    size_t nbytes = 0;
  };

  int insert(std::unique_ptr<Held> held, Device d, bool scratch, size_t nbytes);
  const Entry& entry(int id) const;
  Entry& checked(int id, DeviceKind kind);  // entry(id), of that kind
  void free_slot(int id);
  template <typename Match>
  void release_scratch_if(Match match);  // the scratch tensors of the devices match(device) accepts
  template <typename Keep>
  Usage sum(Keep keep) const;

  std::vector<Entry> slots_;
  std::vector<int> free_;
  std::vector<int> scratch_;  // handles made as scratch, of every device (some may be gone since)
};

TensorTable& tensors();

}  // namespace kt
