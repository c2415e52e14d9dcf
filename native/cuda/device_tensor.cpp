// Device tensors, their handle table and the caching pool (see device_tensor.h).
#include "cuda/device_tensor.h"

#include <algorithm>

#include "cuda/cuda_common.h"

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
    cudaError_t e = cudaMalloc(&p, cls + kPad);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear the out-of-memory error before retrying
      trim();
      e = cudaMalloc(&p, cls + kPad);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      throw std::runtime_error("cuda: out of device memory allocating " + std::to_string(nbytes) + " bytes (" +
                               std::to_string(in_use_ >> 20) + " MiB in use)");
    }
    reserved_ += cls;
  }
  in_use_ += cls;
  return std::shared_ptr<void>(p, [this, cls, graph](void* q) { give_back(q, cls, graph); });
}

void DevicePool::give_back(void* p, size_t cls, bool graph) {
  // Reuse is safe without a sync: every op runs on the one stream, in order.
  in_use_ -= cls;
  (graph ? graph_free_ : free_)[cls].push_back(p);
}

void DevicePool::trim() {
  if (capturing_) return;  // no cudaFree inside a capture
  check_cuda(cudaStreamSynchronize(stream()), "trim pool");
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

DevicePool& pool() {
  static DevicePool* p = new DevicePool();  // never destroyed: tensors may outlive static destructors
  return *p;
}

DeviceTensor new_device_tensor(DType dtype, std::vector<int64_t> shape, bool scratch) {
  const TypeTraits* tr = type_traits(dtype);
  if (!tr) throw std::invalid_argument("alloc: unknown dtype " + std::to_string(static_cast<int>(dtype)));
  DeviceTensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  if (t.numel() % tr->block_elems != 0) throw std::invalid_argument("alloc: " + t.describe() + " is not a whole number of blocks");
  t.nbytes = static_cast<size_t>(t.numel() / tr->block_elems * tr->block_bytes);
  t.owner = pool().alloc(t.nbytes);
  t.data = t.owner.get();
  t.scratch = scratch;
  if (!scratch) check_cuda(cudaMemsetAsync(t.data, 0, t.nbytes, stream()), "alloc: zero fill");
  else if (options().poison) check_cuda(cudaMemsetAsync(t.data, 0xff, t.nbytes, stream()), "alloc: poison fill");
  return t;
}

int DeviceTensorTable::add(DeviceTensor t) {
  const bool scratch = t.scratch;
  int id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
    slots_[id] = std::make_unique<DeviceTensor>(std::move(t));
  } else {
    id = static_cast<int>(slots_.size());
    slots_.push_back(std::make_unique<DeviceTensor>(std::move(t)));
  }
  if (scratch) scratch_.push_back(id);
  return id;
}

DeviceTensor& DeviceTensorTable::get(int id) {
  if (id < 0 || id >= static_cast<int>(slots_.size()) || !slots_[id])
    throw std::invalid_argument("invalid or released device tensor handle " + std::to_string(id));
  return *slots_[id];
}

void DeviceTensorTable::release(int id) {
  get(id);
  slots_[id].reset();
  free_.push_back(id);
}

void DeviceTensorTable::release_scratch() {
  for (int id : scratch_) {
    if (id < static_cast<int>(slots_.size()) && slots_[id] && slots_[id]->scratch) {
      slots_[id].reset();
      free_.push_back(id);
    }
  }
  scratch_.clear();
}

void DeviceTensorTable::persist(int id) {
  get(id).scratch = false;
  scratch_.erase(std::remove(scratch_.begin(), scratch_.end(), id), scratch_.end());
}

size_t DeviceTensorTable::live_bytes() const {
  size_t total = 0;
  for (const auto& t : slots_)
    if (t) total += t->nbytes;
  return total;
}

DeviceTensorTable& device_tensors() {
  static DeviceTensorTable* table = new DeviceTensorTable();  // see pool()
  return *table;
}

}  // namespace kt::cuda
