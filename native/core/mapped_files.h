// Weight files mapped for TypeScript (mapFile and cudaMapFile: one id space, one table): a CPU
// tensor views a mapping's bytes, a CUDA tensor copies them to its device, so one GGUF mapping
// can feed both (a CPU expert tensor beside the GPU's layers).
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cpu/dtype.h"

namespace kt {

struct MappedFile {
  std::shared_ptr<void> base;  // tensors viewing the bytes hold it too
  size_t size = 0;
};

class MappedFiles {
 public:
  int map(const std::string& path);  // -> mapping id
  const MappedFile& get(int id, const char* op) const;  // std::invalid_argument("op: unknown file mapping")
  void unmap(int id) { files_.erase(id); }  // tensors made from it keep the bytes mapped
  size_t count() const { return files_.size(); }

 private:
  std::unordered_map<int, MappedFile> files_;
  int next_ = 1;
};

MappedFiles& mapped_files();

// Where the E slices of a stacked weight [E, N, K] of `dtype` come from (Hugging Face keeps each expert in a
// tensor of its own): slice e is `slice` bytes of mapping maps[e] at offsets[e]. Everything is checked before
// the caller allocates; std::invalid_argument("op: ...") names what is wrong.
struct StackSources {
  std::vector<const uint8_t*> src;
  size_t slice = 0;
};
StackSources stack_sources(const std::vector<int64_t>& maps, const std::vector<int64_t>& offsets, DType dtype,
                           const std::vector<int64_t>& shape, const char* op);

// Memory-maps a whole file read-only; the mapping lives while the pointer does.
std::shared_ptr<void> map_file(const std::string& path, size_t* size_out);

}  // namespace kt
