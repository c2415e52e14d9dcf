// Programmatic dependent launch (sm_90): a kernel started with launch_pdl may be scheduled while
// the kernel before it on the stream is still finishing, so its launch and its weight prefetch
// overlap that kernel's tail. At decode a step is hundreds of kernels of a few µs each, where
// that gap is a large part of the time.
//
// The contract: a kernel launched with launch_pdl calls pdl_wait() in every block, before it
// reads anything an earlier kernel wrote and before it writes anything (an earlier kernel may
// still read a buffer the pool handed on). pdl_wait returns once every earlier kernel has
// finished and its writes are visible; since every PDL kernel waits before it ends, the order
// holds along the whole chain. Before the wait it may read only what no kernel writes (weights).
// pdl_trigger() in the kernel before lets the dependent's blocks start early; without it they
// start as that kernel's blocks end.
#pragma once
#include <cstdint>

#include "cuda/cuda_common.h"

namespace kt::cuda {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Asks for bytes at p to be brought into L2 (a hint; nothing waits for it). The bulk form needs
// 16-byte alignment and a multiple of 16 bytes; other ranges are skipped.
__device__ __forceinline__ void prefetch_l2(const void* p, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if ((reinterpret_cast<uintptr_t>(p) & 15) == 0 && (bytes & 15) == 0 && bytes > 0)
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
#endif
}

// kernel<<<grid, block, smem, stream()>>>(args...), allowed to overlap the kernel before it
// (options().pdl; off, it is an ordinary launch and pdl_wait returns at once).
template <typename... Params, typename... Args>
void launch_pdl(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream();
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = options().pdl ? 1 : 0;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  check_cuda(cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...), name);
}

}  // namespace kt::cuda
