// Native (host) tensors. A tensor is a typed, shaped view of bytes that something owns: a
// malloc'd block, or a mapped weight file (kept alive by shared ownership while any view of it
// exists). TypeScript holds them by handles of the tensor table (core/tensor_table.h).
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/device.h"
#include "cpu/dtype.h"

namespace kt {

struct Tensor {
  static constexpr DeviceKind kDeviceKind = DeviceKind::CPU;  // what the tensor table tags it with
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // outermost first (row-major)
  void* data = nullptr;
  size_t nbytes = 0;
  std::shared_ptr<void> owner;
  bool scratch = false;

  int64_t numel() const;
  int64_t dim(int i) const;  // negative counts from the end
  std::string describe() const;  // "F32[4,256]" for error messages
  template <typename T> T* as() const { return static_cast<T*>(data); }
};

// Allocates 64-byte aligned, zeroed memory owned by the returned pointer.
std::shared_ptr<void> aligned_alloc_zeroed(size_t nbytes);

// A zeroed, owned tensor; scratch ones die at the next release_scratch().
Tensor new_tensor(DType dtype, std::vector<int64_t> shape, bool scratch);

// Throws std::invalid_argument with "op: message" when cond is false.
inline void check(bool cond, const char* op, const std::string& message) {
  if (!cond) throw std::invalid_argument(std::string(op) + ": " + message);
}

}  // namespace kt
