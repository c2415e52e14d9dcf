// Device-resident tensors and the caching pool their memory comes from (one per device, see
// device.h): cudaMalloc happens while the pool warms up (first steps, weight upload), after which
// every per-step tensor reuses a freed block of its size class. TypeScript holds the tensors by
// handles of the tensor table that CPU tensors share (core/tensor_table.h).
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/device.h"
#include "cpu/dtype.h"

namespace kt::cuda {

struct DeviceTensor {
  static constexpr DeviceKind kDeviceKind = DeviceKind::CUDA;  // what the tensor table tags it with
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // outermost first (row-major)
  void* data = nullptr;        // device memory
  size_t nbytes = 0;
  int device = 0;              // the CUDA ordinal whose pool holds data
  std::shared_ptr<void> owner;  // returns the block to the pool when the last view goes
  bool scratch = false;
  // A copy of the I32 values last uploaded from the host (token ids, slots, block tables):
  // ops validate indices against it exactly as the CPU ops do, with no device sync.
  std::vector<int32_t> host_i32;
  // Where the op that wrote this tensor also wrote its rows in q8_K (rmsnorm at decode), the
  // storage of that copy in quantize_act.h's layout: the GEMV then skips quantizing them again.
  // Ops that write a tensor in place drop it.
  std::shared_ptr<void> q8k;

  int64_t numel() const;
  int64_t dim(int i) const;  // negative counts from the end
  std::string describe() const;  // "F32[4,256]" for error messages
  template <typename T> T* as() const { return static_cast<T*>(data); }
  bool has_host_copy() const { return dtype == DType::I32 && static_cast<int64_t>(host_i32.size()) == numel(); }
};

// Size-class caching allocator over cudaMalloc. Blocks are never handed back to the driver
// except by trim() (or when an allocation fails, before retrying once).
class DevicePool {
 public:
  explicit DevicePool(int ordinal) : ordinal_(ordinal) {}
  std::shared_ptr<void> alloc(size_t nbytes);  // on the pool's device, whichever is current
  void trim();
  size_t reserved() const { return reserved_; }  // bytes obtained from cudaMalloc
  size_t in_use() const { return in_use_; }
  size_t cached() const { return reserved_ - in_use_; }
  // While a CUDA graph is captured, blocks come from (and go back to) a free list of their own:
  // a graph's kernels keep their pointers for every replay, so no tensor made outside a capture
  // (a persistent buffer, an eager step's scratch) may ever be handed one of those blocks.
  // Captures run one after another and their graphs replay serially, so they share the list.
  void set_capturing(bool on) { capturing_ = on; }
  // Live graphs: while any, trim() keeps the graph blocks.
  void add_graph_ref(int delta) { graph_refs_ += delta; }

 private:
  void give_back(void* p, size_t cls, bool graph);
  int ordinal_;
  std::unordered_map<size_t, std::vector<void*>> free_, graph_free_;
  bool capturing_ = false;
  size_t reserved_ = 0, in_use_ = 0;
  int graph_refs_ = 0;
};

// The current device's pool (device.h).
DevicePool& pool();

// A tensor on the current device, from its pool; persistent ones (scratch = false) are zero-filled,
// per-step ones are left as they are (or NaN-filled with options().poison).
DeviceTensor new_device_tensor(DType dtype, std::vector<int64_t> shape, bool scratch);

// Throws std::invalid_argument with "op: message" when cond is false.
inline void check(bool cond, const char* op, const std::string& message) {
  if (!cond) throw std::invalid_argument(std::string(op) + ": " + message);
}

}  // namespace kt::cuda
