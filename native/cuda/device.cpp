// The CUDA devices (device.h), the process's run-time options, and the accessors the kernel files
// call, which resolve to the calling thread's current device.
#include "cuda/device.h"

#include <cublas_v2.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/ops.h"

namespace kt::cuda {

void throw_cuda(cudaError_t e, const char* what) {
  throw std::runtime_error(std::string("cuda ") + what + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

// Process-wide, not per device: they choose kernels and precision, which every GPU of one model
// must agree on (a tensor-parallel layer's shards must round alike); per-GPU facts such as the
// SM count are read from the device where they are needed.
Options& options() {
  static Options o;
  return o;
}

namespace {

constexpr int kMaxDevices = 64;
std::atomic<CudaDevice*> devices[kMaxDevices];  // created on first use, never destroyed (see pool())
std::mutex creating;
std::atomic<int> next_graph{1};

thread_local int current = kDefaultDevice;  // what the accessors resolve to on this thread
thread_local int selected = -1;             // what this thread last passed to cudaSetDevice

void select(int ordinal) {
  if (selected == ordinal) return;
  check_cuda(cudaSetDevice(ordinal), ("set device cuda:" + std::to_string(ordinal)).c_str());
  selected = ordinal;
}

}  // namespace

DeviceGuard::DeviceGuard(int ordinal) : previous_(current) {
  select(ordinal);
  current = ordinal;
}

// The previous device is selected again lazily, by the next current_device().
DeviceGuard::~DeviceGuard() { current = previous_; }

CudaDevice& cuda_device(int ordinal) {
  if (ordinal < 0 || ordinal >= kMaxDevices) throw std::invalid_argument("no CUDA device " + std::to_string(ordinal));
  CudaDevice* d = devices[ordinal].load(std::memory_order_acquire);
  if (d) return *d;
  std::lock_guard<std::mutex> lock(creating);
  d = devices[ordinal].load(std::memory_order_relaxed);
  if (!d) {
    d = new CudaDevice(ordinal);
    devices[ordinal].store(d, std::memory_order_release);
  }
  return *d;
}

CudaDevice& current_device() {
  select(current);
  return cuda_device(current);
}

int current_ordinal() { return current; }

std::vector<CudaDevice*> created_devices() {
  std::vector<CudaDevice*> out;
  for (auto& d : devices)
    if (CudaDevice* p = d.load(std::memory_order_acquire)) out.push_back(p);
  return out;
}

CudaDevice* graph_owner(int id) {
  for (auto& d : devices)  // every replay asks: no vector of created_devices()
    if (CudaDevice* p = d.load(std::memory_order_acquire); p && p->owns_graph(id)) return p;
  return nullptr;
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

CudaDevice::CudaDevice(int ordinal) : ordinal_(ordinal), pool_(ordinal) {
  DeviceGuard on(ordinal_);
  check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "create stream");
}

void* CudaDevice::cublas_handle() {
  if (cublas_) return cublas_;
  DeviceGuard on(ordinal_);
  cublasHandle_t created = nullptr;
  if (cublasCreate(&created) != CUBLAS_STATUS_SUCCESS) throw std::runtime_error("cuda: cublasCreate failed on " + id().name());
  cublasSetStream(created, stream_);
  constexpr size_t kWorkspace = size_t{32} << 20;  // what cuBLAS asks for on Hopper
  void* ws = nullptr;
  check_cuda(cudaMalloc(&ws, kWorkspace), "cublas workspace");
  cublasSetWorkspace(created, ws, kWorkspace);
  cublas_ = created;
  return cublas_;
}

int* CudaDevice::split_counters(int64_t n) {
  constexpr int64_t kCount = int64_t{1} << 20;
  if (!counters_) {
    DeviceGuard on(ordinal_);
    void* p = nullptr;
    check_cuda(cudaMalloc(&p, kCount * sizeof(int)), "split counters");
    check_cuda(cudaMemset(p, 0, kCount * sizeof(int)), "split counters");
    counters_ = static_cast<int*>(p);
  }
  return n <= kCount ? counters_ : nullptr;
}

void CudaDevice::capture_begin() {
  DeviceGuard on(ordinal_);
  split_counters(0);  // allocated and zeroed outside the capture
  // Relaxed: the pool may still cudaMalloc a block it has not cached yet while capturing.
  check_cuda(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed), "capture begin");
  pool_.set_capturing(true);
}

int CudaDevice::capture_end() {
  DeviceGuard on(ordinal_);
  cudaGraph_t graph = nullptr;
  pool_.set_capturing(false);
  check_cuda(cudaStreamEndCapture(stream_, &graph), "capture end");
  cudaGraphExec_t exec = nullptr;
  const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  check_cuda(e, "graph instantiate");
  const int id = next_graph++;
  graphs_[id] = exec;
  pool_.add_graph_ref(1);
  return id;
}

void CudaDevice::replay(int id) {
  DeviceGuard on(ordinal_);
  check_cuda(cudaGraphLaunch(graphs_.at(id), stream_), "graph launch");
}

void CudaDevice::release_graph(int id) {
  auto it = graphs_.find(id);
  if (it == graphs_.end()) return;
  DeviceGuard on(ordinal_);
  cudaGraphExecDestroy(it->second);
  graphs_.erase(it);
  pool_.add_graph_ref(-1);
}

// ---- the accessors of cuda_common.h and ops.h (pool() is in device_tensor.cpp) ----

cudaStream_t stream() { return current_device().stream(); }

void* cublas_handle() { return current_device().cublas_handle(); }

int* split_counters(int64_t n) { return current_device().split_counters(n); }

}  // namespace kt::cuda
