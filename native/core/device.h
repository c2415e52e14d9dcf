// Where a tensor lives: the host ("cpu") or one CUDA device ("cuda:N"). The tensor table
// tags every entry with one, so an op is never handed another device's memory.
#pragma once
#include <cstdint>
#include <string>

namespace kt {

enum class DeviceKind : uint8_t { CPU, CUDA };

struct Device {
  DeviceKind kind = DeviceKind::CPU;
  int ordinal = 0;  // the CUDA device number; 0 for the CPU

  static constexpr Device cpu() { return {DeviceKind::CPU, 0}; }
  static constexpr Device cuda(int ordinal) { return {DeviceKind::CUDA, ordinal}; }
  bool operator==(const Device& o) const { return kind == o.kind && ordinal == o.ordinal; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string name() const { return kind == DeviceKind::CPU ? "cpu" : "cuda:" + std::to_string(ordinal); }
};

}  // namespace kt
