// Device tensors and the caching pool (see device_tensor.h).
#include "cuda/device_tensor.h"

#include <algorithm>

#include "cuda/cuda_common.h"
#include "cuda/device.h"

namespace kt::cuda {

int64_t DeviceTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t DeviceTensor::dim(int i) const {
  const int n = static_cast<int>(shape.size());
  if (i < 0) i += n;
  if (i < 0 || i >= n) throw std::invalid_argument("tensor " + describe() + " has no dimension " + std::to_string(i));
  return shape[i];
}

std::string DeviceTensor::describe() const {
  const TypeTraits* tr = type_traits(dtype);
  std::string s = tr ? tr->name : "?";
  s += "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

namespace {

// Size classes, so a freed block serves any later request of its class however the shapes of the previous
// step were split: 256-byte steps up to 4 KiB, four classes per power of two up to 1 MiB (at most 19% slack),
// sixteen up to 256 MiB (at most 6%: weights live here), and 2 MiB steps above — a KV cache layer or an
// embedding table is allocated once and must not take a quarter more than it holds (issue 13: 1 GiB layers in
// 1.25 GiB blocks left no room for the graphs on an 80 GB card).
size_t size_class(size_t n) {
  const auto round_up = [](size_t v, size_t step) { return (v + step - 1) / step * step; };
  n = std::max<size_t>(n, 256);
  if (n <= 4096) return round_up(n, 256);
  if (n >= (size_t{256} << 20)) return round_up(n, size_t{2} << 20);
  int top = 63 - __builtin_clzll(n);  // 2^top <= n
  const size_t step = size_t{1} << (top - (n >= (size_t{1} << 20) ? 4 : 2));
  return round_up(n, step);
}

}  // namespace

std::shared_ptr<void> DevicePool::alloc(size_t nbytes) {
  const size_t cls = size_class(nbytes);
  void* p = nullptr;
  const bool graph = capturing_;
  auto& lists = graph ? graph_free_ : free_;
  auto it = lists.find(cls);
  if (it != lists.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
  } else {
    // The padding lets kernels read a word past a tensor's last byte (load_words_any in dequant.cuh).
    constexpr size_t kPad = 64;
    DeviceGuard on(ordinal_);
    cudaError_t e = cudaMalloc(&p, cls + kPad);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear the out-of-memory error before retrying
      trim();
      e = cudaMalloc(&p, cls + kPad);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      throw std::runtime_error("cuda: out of device memory on cuda:" + std::to_string(ordinal_) + " allocating " + std::to_string(nbytes) + " bytes (" +
                               std::to_string(in_use_ >> 20) + " MiB in use)");
    }
    reserved_ += cls;
  }
  in_use_ += cls;
  return std::shared_ptr<void>(p, [this, cls, graph](void* q) { give_back(q, cls, graph); });
}

void DevicePool::give_back(void* p, size_t cls, bool graph) {
  // Reuse is safe without a sync: every op of this device runs on its one stream, in order.
  in_use_ -= cls;
  (graph ? graph_free_ : free_)[cls].push_back(p);
}

void DevicePool::trim() {
  if (capturing_) return;  // no cudaFree inside a capture
  DeviceGuard on(ordinal_);
  check_cuda(cudaStreamSynchronize(cuda_device(ordinal_).stream()), "trim pool");
  const auto drop = [this](std::unordered_map<size_t, std::vector<void*>>& lists) {
    for (auto& [cls, blocks] : lists) {
      for (void* p : blocks) {
        cudaFree(p);
        reserved_ -= cls;
      }
      blocks.clear();
    }
  };
  drop(free_);
  if (graph_refs_ == 0) drop(graph_free_);
}

// Devices, and so their pools, are never destroyed: tensors may outlive static destructors.
DevicePool& pool() { return current_device().pool(); }

DeviceTensor new_device_tensor(DType dtype, std::vector<int64_t> shape, bool scratch) {
  const TypeTraits* tr = type_traits(dtype);
  if (!tr) throw std::invalid_argument("alloc: unknown dtype " + std::to_string(static_cast<int>(dtype)));
  CudaDevice& dev = current_device();
  DeviceTensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  if (t.numel() % tr->block_elems != 0) throw std::invalid_argument("alloc: " + t.describe() + " is not a whole number of blocks");
  t.nbytes = static_cast<size_t>(t.numel() / tr->block_elems * tr->block_bytes);
  t.owner = dev.pool().alloc(t.nbytes);
  t.data = t.owner.get();
  t.device = dev.ordinal();
  t.scratch = scratch;
  if (!scratch) check_cuda(cudaMemsetAsync(t.data, 0, t.nbytes, dev.stream()), "alloc: zero fill");
  else if (options().poison) check_cuda(cudaMemsetAsync(t.data, 0xff, t.nbytes, dev.stream()), "alloc: poison fill");
  return t;
}

}  // namespace kt::cuda
