// One object per CUDA device: its stream, cuBLAS handle, split counters, caching pool and CUDA
// graphs. A device is created the first time its ordinal is used and lives for the process. The
// accessors the kernel files call (stream(), cublas_handle(), split_counters(), pool()) resolve to
// the calling thread's current device, which each binding sets from its tensors (napi_args.h).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "core/device.h"
#include "cuda/device_tensor.h"

namespace kt::cuda {

// What a call with no tensor argument and no device argument runs on.
constexpr int kDefaultDevice = 0;

class CudaDevice {
 public:
  explicit CudaDevice(int ordinal);  // creates the stream on that device; use cuda_device()
  CudaDevice(const CudaDevice&) = delete;
  CudaDevice& operator=(const CudaDevice&) = delete;

  int ordinal() const { return ordinal_; }
  Device id() const { return Device::cuda(ordinal_); }
  // The one compute stream: every op of this device runs on it, in order (the pool relies on that).
  cudaStream_t stream() const { return stream_; }
  // cuBLAS bound to stream(), with a fixed workspace so a CUDA-graph capture needs no allocation.
  void* cublas_handle();
  // n zeroed ints that stay allocated (see ops.h), or null where n exceeds what was set aside.
  int* split_counters(int64_t n);
  DevicePool& pool() { return pool_; }

  // CUDA graphs of whatever runs on stream() between capture_begin and capture_end; graph ids are
  // unique across devices, so a replay finds its device by the id alone (graph_owner).
  void capture_begin();
  int capture_end();
  bool owns_graph(int id) const { return graphs_.count(id) != 0; }
  void replay(int id);
  void release_graph(int id);

 private:
  int ordinal_;
  cudaStream_t stream_ = nullptr;
  void* cublas_ = nullptr;
  int* counters_ = nullptr;
  DevicePool pool_;
  std::unordered_map<int, cudaGraphExec_t> graphs_;
};

// The device of that ordinal, created (cudaSetDevice, then its stream) on first use.
CudaDevice& cuda_device(int ordinal);
// The calling thread's current device (kDefaultDevice outside any DeviceGuard); selects it with
// cudaSetDevice where the thread last selected another.
CudaDevice& current_device();
// Its ordinal, without selecting or creating it.
int current_ordinal();
// The devices created so far, by ordinal (stats, releases, graph lookup: none is created by them).
std::vector<CudaDevice*> created_devices();
// The created device that holds graph `id`, or null.
CudaDevice* graph_owner(int id);
// CUDA devices visible to the process (0 where none, or the runtime fails).
int device_count();

// Makes cuda:ordinal the calling thread's current device until the scope ends (cudaSetDevice where
// it changes), then the previous one again. Threads have their own, as CUDA's own current device.
class DeviceGuard {
 public:
  explicit DeviceGuard(int ordinal);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_;
};

}  // namespace kt::cuda
