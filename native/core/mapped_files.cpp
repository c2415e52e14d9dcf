// Mapped weight files (see mapped_files.h).
#include "core/mapped_files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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
