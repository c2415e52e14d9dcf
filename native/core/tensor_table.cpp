// The device-tagged tensor table (see tensor_table.h).
#include "core/tensor_table.h"

#include <algorithm>

namespace kt {

std::string wrong_device_kind(int id, Device on, DeviceKind want) {
  return "tensor " + std::to_string(id) + " is on " + on.name() + ", not on " + (want == DeviceKind::CPU ? "the cpu" : "a CUDA device");
}

int TensorTable::insert(std::unique_ptr<Held> held, Device d, bool scratch, size_t nbytes) {
  int id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    id = static_cast<int>(slots_.size());
    slots_.emplace_back();
  }
  slots_[id] = Entry{std::move(held), d, scratch, nbytes};
  if (scratch) scratch_.push_back(id);
  return id;
}

const TensorTable::Entry& TensorTable::entry(int id) const {
  if (id < 0 || id >= static_cast<int>(slots_.size()) || !slots_[id].held)
    throw std::invalid_argument("invalid or released tensor handle " + std::to_string(id));
  return slots_[id];
}

TensorTable::Entry& TensorTable::checked(int id, DeviceKind kind) {
  const Entry& e = entry(id);
  if (e.device.kind != kind) throw std::invalid_argument(wrong_device_kind(id, e.device, kind));
  return slots_[id];
}

void TensorTable::free_slot(int id) {
  slots_[id] = Entry{};  // the tensor's owner gives its memory back (host free, or the device pool)
  free_.push_back(id);
}

void TensorTable::release(int id, DeviceKind kind) {
  checked(id, kind);
  free_slot(id);
}

template <typename Match>
void TensorTable::release_scratch_if(Match match) {
  std::vector<int> kept;
  for (int id : scratch_) {
    Entry& e = slots_[id];  // ids in scratch_ are always < slots_.size(): slots are never removed
    if (!e.held || !e.scratch) continue;  // released or persisted since
    if (match(e.device)) free_slot(id);
    else kept.push_back(id);
  }
  scratch_ = std::move(kept);
}

void TensorTable::release_scratch(Device d) {
  release_scratch_if([d](Device on) { return on == d; });
}

void TensorTable::release_scratch(DeviceKind kind) {
  release_scratch_if([kind](Device on) { return on.kind == kind; });
}

void TensorTable::persist(int id, DeviceKind kind) {
  checked(id, kind).scratch = false;
  scratch_.erase(std::remove(scratch_.begin(), scratch_.end(), id), scratch_.end());
}

template <typename Keep>
TensorTable::Usage TensorTable::sum(Keep keep) const {
  Usage u;
  for (const Entry& e : slots_) {
    if (!e.held || !keep(e.device)) continue;
    u.tensors += 1;
    u.bytes += e.nbytes;
  }
  return u;
}

TensorTable::Usage TensorTable::usage() const {
  return sum([](Device) { return true; });
}

TensorTable::Usage TensorTable::usage(Device d) const {
  return sum([d](Device on) { return on == d; });
}

TensorTable::Usage TensorTable::usage(DeviceKind kind) const {
  return sum([kind](Device on) { return on.kind == kind; });
}

std::vector<Device> TensorTable::devices() const {
  std::vector<Device> out;
  for (const Entry& e : slots_)
    if (e.held && std::find(out.begin(), out.end(), e.device) == out.end()) out.push_back(e.device);
  std::sort(out.begin(), out.end(), [](Device a, Device b) { return a.kind != b.kind ? a.kind < b.kind : a.ordinal < b.ordinal; });
  return out;
}

TensorTable& tensors() {
  static TensorTable* table = new TensorTable();  // never destroyed: tensors may outlive static destructors
  return *table;
}

}  // namespace kt
