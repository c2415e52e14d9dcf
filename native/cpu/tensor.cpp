#include "cpu/tensor.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace kt {

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t Tensor::dim(int i) const {
  int n = static_cast<int>(shape.size());
  if (i < 0) i += n;
  if (i < 0 || i >= n) throw std::invalid_argument("tensor " + describe() + " has no dimension " + std::to_string(i));
  return shape[i];
}

std::string Tensor::describe() const {
  const TypeTraits* tr = type_traits(dtype);
  std::string s = tr ? tr->name : "?";
  s += "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

std::shared_ptr<void> aligned_alloc_zeroed(size_t nbytes) {
  size_t rounded = (std::max<size_t>(nbytes, 1) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw std::runtime_error("out of host memory allocating " + std::to_string(nbytes) + " bytes");
  std::memset(p, 0, rounded);
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

Tensor new_tensor(DType dtype, std::vector<int64_t> shape, bool scratch) {
  const TypeTraits* tr = type_traits(dtype);
  if (!tr) throw std::invalid_argument("alloc: unknown dtype " + std::to_string(static_cast<int>(dtype)));
  Tensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  if (t.numel() % tr->block_elems != 0) throw std::invalid_argument("alloc: " + t.describe() + " is not a whole number of blocks");
  t.nbytes = static_cast<size_t>(t.numel() / tr->block_elems * tr->block_bytes);
  t.owner = aligned_alloc_zeroed(t.nbytes);
  t.data = t.owner.get();
  t.scratch = scratch;
  return t;
}

int TensorTable::add(Tensor t) {
  bool scratch = t.scratch;
  int id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
    slots_[id] = std::make_unique<Tensor>(std::move(t));
  } else {
    id = static_cast<int>(slots_.size());
    slots_.push_back(std::make_unique<Tensor>(std::move(t)));
  }
  if (scratch) scratch_.push_back(id);
  return id;
}

Tensor& TensorTable::get(int id) {
  if (id < 0 || id >= static_cast<int>(slots_.size()) || !slots_[id])
    throw std::invalid_argument("invalid or released tensor handle " + std::to_string(id));
  return *slots_[id];
}

void TensorTable::release(int id) {
  get(id);
  slots_[id].reset();
  free_.push_back(id);
}

void TensorTable::release_scratch() {
  for (int id : scratch_) {
    if (id < static_cast<int>(slots_.size()) && slots_[id] && slots_[id]->scratch) {
      slots_[id].reset();
      free_.push_back(id);
    }
  }
  scratch_.clear();
}

size_t TensorTable::live_bytes() const {
  size_t total = 0;
  for (const auto& t : slots_)
    if (t) total += t->nbytes;
  return total;
}

TensorTable& tensors() {
  static TensorTable table;
  return table;
}

std::shared_ptr<void> map_file(const std::string& path, size_t* size_out) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot stat " + path + ": " + std::strerror(errno));
  }
  size_t size = static_cast<size_t>(st.st_size);
  void* p = size ? ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0) : nullptr;
  ::close(fd);
  if (size && p == MAP_FAILED) throw std::runtime_error("cannot mmap " + path + ": " + std::strerror(errno));
  *size_out = size;
  return std::shared_ptr<void>(p, [size](void* q) {
    if (q) ::munmap(q, size);
  });
}

}  // namespace kt
