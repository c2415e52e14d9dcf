// The process's CUDA state: one compute stream, one cuBLAS handle on it (with a fixed
// workspace, so a later CUDA-graph capture needs no allocation), and the run-time options.
#include <cublas_v2.h>

#include <stdexcept>
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/ops.h"

namespace kt::cuda {

void throw_cuda(cudaError_t e, const char* what) {
  throw std::runtime_error(std::string("cuda ") + what + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

Options& options() {
  static Options o;
  return o;
}

cudaStream_t stream() {
  static cudaStream_t s = [] {
    cudaStream_t created = nullptr;
    check_cuda(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking), "create stream");
    return created;
  }();
  return s;
}

int* split_counters(int64_t n) {
  constexpr int64_t kCount = int64_t{1} << 20;
  static int* counters = [] {
    void* p = nullptr;
    check_cuda(cudaMalloc(&p, kCount * sizeof(int)), "split counters");
    check_cuda(cudaMemset(p, 0, kCount * sizeof(int)), "split counters");
    return static_cast<int*>(p);
  }();
  return n <= kCount ? counters : nullptr;
}

void* cublas_handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t created = nullptr;
    if (cublasCreate(&created) != CUBLAS_STATUS_SUCCESS) throw std::runtime_error("cuda: cublasCreate failed");
    cublasSetStream(created, stream());
    constexpr size_t kWorkspace = size_t{32} << 20;  // what cuBLAS asks for on Hopper
    void* ws = nullptr;
    check_cuda(cudaMalloc(&ws, kWorkspace), "cublas workspace");
    cublasSetWorkspace(created, ws, kWorkspace);
    return created;
  }();
  return h;
}

}  // namespace kt::cuda
