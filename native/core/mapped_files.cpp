// Mapped weight files (see mapped_files.h).
#include "core/mapped_files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>

namespace kt {

int MappedFiles::map(const std::string& path) {
  MappedFile m;
  m.base = map_file(path, &m.size);
  const int id = next_++;
  files_[id] = std::move(m);
  return id;
}

const MappedFile& MappedFiles::get(int id, const char* op) const {
  auto it = files_.find(id);
  if (it == files_.end()) throw std::invalid_argument(std::string(op) + ": unknown file mapping");
  return it->second;
}

StackSources stack_sources(const std::vector<int64_t>& maps, const std::vector<int64_t>& offsets, DType dtype,
                           const std::vector<int64_t>& shape, const char* op) {
  const auto fail = [op](const std::string& m) { throw std::invalid_argument(std::string(op) + ": " + m); };
  const TypeTraits* tr = type_traits(dtype);
  if (!tr) fail("unknown dtype " + std::to_string(static_cast<int>(dtype)));
  if (shape.size() != 3 || shape[0] < 1 || shape[1] < 0 || shape[2] < 0) fail("shape must be [E, N, K] with E >= 1");
  const int64_t E = shape[0];
  if (shape[2] % tr->block_elems != 0) fail("rows of " + std::to_string(shape[2]) + " are not whole " + tr->name + " blocks");
  if (static_cast<int64_t>(maps.size()) != E || static_cast<int64_t>(offsets.size()) != E) {
    fail(std::to_string(maps.size()) + " mappings and " + std::to_string(offsets.size()) + " offsets for " + std::to_string(E) + " experts");
  }
  StackSources out;
  out.slice = static_cast<size_t>(row_bytes(*tr, shape[2]) * shape[1]);
  for (int64_t e = 0; e < E; ++e) {
    if (maps[e] < 0 || maps[e] > INT32_MAX) fail("mappings[" + std::to_string(e) + "] is not a mapping id");
    const MappedFile& m = mapped_files().get(static_cast<int>(maps[e]), op);
    const int64_t off = offsets[e];
    if (off < 0 || static_cast<size_t>(off) + out.slice > m.size) {
      fail("expert " + std::to_string(e) + " (" + std::to_string(out.slice) + " bytes at offset " + std::to_string(off) + ") runs past the end of its file");
    }
    out.src.push_back(static_cast<const uint8_t*>(m.base.get()) + off);
  }
  return out;
}

MappedFiles& mapped_files() {
  static MappedFiles* files = new MappedFiles();  // never destroyed, like the tensor table
  return *files;
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
