#include "cpu/tensor.h"

#include <algorithm>
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

}  // namespace kt
