// matmul dispatch: x [M, K] · w [N, K]ᵀ. M ≤ gemv_max_rows runs the GEMV kernels (any weight
// type; f32 activations for plain weights, q8 activations and int8 dots for quantized ones, as
// the CPU). Larger M goes through cuBLAS: with Precision::BF16, BF16/F16 weights
// are used as they are and quantized ones dequantized to bf16 a chunk of rows at a time, the
// activations rounded to bf16/f16, tensor cores with f32 accumulation; with Precision::F32 the
// weights are dequantized to f32 and multiplied in plain f32 (what the CPU computes); between the
// GEMV rows and 64, Q4_K/Q6_K in bf16 precision take the tensor-core kernel (matmul_mma.cu).
// matmul_group and matmul_silu_mul run a layer's q, k, v (and gate, up with SwiGLU) as one GEMV
// launch at decode; a tensor whose q8_K rows an op already wrote (DeviceTensor::q8k) is not
// quantized again.
#include <cublas_v2.h>

#include <algorithm>
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/ops.h"

namespace kt::cuda {

namespace {

// Dequantized weight rows held at once; a chunk of rows is one cuBLAS call.
constexpr size_t kScratchBytes = size_t{256} << 20;

cublasHandle_t handle() { return static_cast<cublasHandle_t>(cublas_handle()); }

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuda matmul: ") + what + " failed: " + cublasGetStatusString(s));
}

// out[:, n0 : n0+n] (row stride ldo) = x [M, K] · w_rows [n, K]ᵀ. Row-major out is column-major
// outᵀ, so this is outᵀ = w_rows · xᵀ with w_rows read transposed.
void gemm(const void* w_rows, cudaDataType_t wt, const void* x, cudaDataType_t xt, int64_t M, int64_t K, int64_t n, float* out,
          int64_t ldo, cublasComputeType_t compute) {
  const float one = 1.f, zero = 0.f;
  check_cublas(cublasGemmEx(handle(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(M), static_cast<int>(K), &one,
                            w_rows, wt, static_cast<int>(K), x, xt, static_cast<int>(K), &zero, out, CUDA_R_32F,
                            static_cast<int>(ldo), compute, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
}

// Rows per chunk: a multiple of 128 (keeps out + n0 aligned for the tensor cores) that fits the scratch.
int64_t chunk_rows(int64_t N, int64_t K, size_t elem) {
  const int64_t fit = static_cast<int64_t>(kScratchBytes / (static_cast<size_t>(K) * elem));
  return std::min(N, std::max<int64_t>(128, fit / 128 * 128));
}

void matmul_f32(const DeviceTensor& x, const DeviceTensor& w, int64_t M, int64_t K, int64_t N, int64_t rb, float* out) {
  // Pedantic: no TF32, whatever NVIDIA_TF32_OVERRIDE says; this path exists to match the CPU.
  if (w.dtype == DType::F32) return gemm(w.data, CUDA_R_32F, x.data, CUDA_R_32F, M, K, N, out, N, CUBLAS_COMPUTE_32F_PEDANTIC);
  const int64_t rows = chunk_rows(N, K, sizeof(float));
  auto scratch = pool().alloc(static_cast<size_t>(rows * K) * sizeof(float));
  for (int64_t n0 = 0; n0 < N; n0 += rows) {
    const int64_t n = std::min(rows, N - n0);
    dequantize_rows_f32(w.as<uint8_t>() + n0 * rb, w.dtype, rb, K, n, static_cast<float*>(scratch.get()));
    gemm(scratch.get(), CUDA_R_32F, x.data, CUDA_R_32F, M, K, n, out + n0, N, CUBLAS_COMPUTE_32F_PEDANTIC);
  }
}

void matmul_bf16(const DeviceTensor& x, const DeviceTensor& w, int64_t M, int64_t K, int64_t N, int64_t rb, float* out) {
  if (w.dtype == DType::F32) return matmul_f32(x, w, M, K, N, rb, out);
  // The pool hands these back to the stream in order, so freeing them right after the
  // launches that read them is safe.
  auto xh = pool().alloc(static_cast<size_t>(M * K) * 2);
  if (w.dtype == DType::F16) {
    convert_f32_to_f16(x.as<float>(), xh.get(), M * K);
    return gemm(w.data, CUDA_R_16F, xh.get(), CUDA_R_16F, M, K, N, out, N, CUBLAS_COMPUTE_32F);
  }
  convert_f32_to_bf16(x.as<float>(), xh.get(), M * K);
  if (w.dtype == DType::BF16) return gemm(w.data, CUDA_R_16BF, xh.get(), CUDA_R_16BF, M, K, N, out, N, CUBLAS_COMPUTE_32F);
  const int64_t rows = chunk_rows(N, K, 2);
  auto scratch = pool().alloc(static_cast<size_t>(rows * K) * 2);
  for (int64_t n0 = 0; n0 < N; n0 += rows) {
    const int64_t n = std::min(rows, N - n0);
    dequantize_rows_bf16(w.as<uint8_t>() + n0 * rb, w.dtype, rb, K, n, scratch.get());
    gemm(scratch.get(), CUDA_R_16BF, xh.get(), CUDA_R_16BF, M, K, n, out + n0, N, CUBLAS_COMPUTE_32F);
  }
}

// Rows up to which weights of type wt take the GEMV path.
int gemv_rows(DType wt) { return options().gemv_max_rows < 0 ? default_gemv_rows(wt) : options().gemv_max_rows; }

// The GEMV weight of w (checked [N, K]) writing to out.
GemvWeight gemv_weight(const DeviceTensor& w, DeviceTensor& out) {
  return GemvWeight{w.data, w.dtype, row_bytes(*type_traits(w.dtype), w.shape[1]), w.shape[0], out.as<float>()};
}

// The view of x's q8_K rows where an op wrote them beside x (DeviceTensor::q8k), else null.
const ActQ* q8k_of(const DeviceTensor& x, int64_t K, ActQ* view) {
  if (!x.q8k || K % 256 != 0) return nullptr;
  *view = q8_view(x.q8k.get(), x.numel() / K, K, ActFormat::Q8_K);
  return view;
}

// True where x [M, K] against ws[0..count) can be one gemv_group launch: M within every weight's GEMV
// rows, one K, types that go together.
bool groupable(const DeviceTensor& x, const DeviceTensor* const* ws, int count) {
  DType types[3];
  if (count > 3 || x.dtype != DType::F32) return false;
  for (int i = 0; i < count; ++i) {
    const DeviceTensor& w = *ws[i];
    if (w.shape.size() != 2 || w.shape[1] != ws[0]->shape[1] || !matmul_type_supported(w.dtype, w.shape[1])) return false;
    const int64_t K = w.shape[1];
    if (K <= 0 || x.numel() % K != 0) return false;
    const int64_t M = x.numel() / K;
    if (M < 1 || M > 2 || M > gemv_rows(w.dtype)) return false;
    types[i] = w.dtype;
  }
  return gemv_group_supported(types, count);
}

}  // namespace

void matmul_group(const DeviceTensor& x, const DeviceTensor* const* ws, DeviceTensor* const* outs, int count) {
  if (!groupable(x, ws, count)) {
    for (int i = 0; i < count; ++i) matmul(x, *ws[i], *outs[i]);
    return;
  }
  const int64_t K = ws[0]->shape[1], M = x.numel() / K;
  GemvWeight g[3];
  for (int i = 0; i < count; ++i) {
    check(outs[i]->dtype == DType::F32 && outs[i]->numel() == M * ws[i]->shape[0], "matmul_group", "out " + outs[i]->describe() + " does not match");
    g[i] = gemv_weight(*ws[i], *outs[i]);
  }
  ActQ view;
  gemv_group(g, count, x.as<float>(), M, K, false, q8k_of(x, K, &view));
}

void matmul_silu_mul(const DeviceTensor& x, const DeviceTensor& gate, const DeviceTensor& up, DeviceTensor& out) {
  const DeviceTensor* ws[2] = {&gate, &up};
  if (!groupable(x, ws, 2) || gate.dtype != up.dtype || gate.shape != up.shape) {
    const int64_t M = x.numel() / gate.dim(-1);
    DeviceTensor g = new_device_tensor(DType::F32, {M, gate.dim(0)}, true);
    DeviceTensor u = new_device_tensor(DType::F32, {M, up.dim(0)}, true);
    matmul(x, gate, g);
    matmul(x, up, u);
    return silu_mul(g, u, out);
  }
  const int64_t K = gate.shape[1], M = x.numel() / K;
  check(out.dtype == DType::F32 && out.numel() == M * gate.shape[0], "matmul_silu_mul", "out " + out.describe() + " does not match");
  GemvWeight g[2] = {gemv_weight(gate, out), gemv_weight(up, out)};
  ActQ view;
  gemv_group(g, 2, x.as<float>(), M, K, true, q8k_of(x, K, &view));
}

void matmul(const DeviceTensor& x, const DeviceTensor& w, DeviceTensor& out) {
  const char* op = "matmul";
  check(x.dtype == DType::F32 && out.dtype == DType::F32, op, "x and out must be F32, got " + x.describe() + ", " + out.describe());
  check(w.shape.size() == 2, op, "weight must be 2-D [N, K], got " + w.describe());
  const int64_t N = w.shape[0], K = w.shape[1];
  check(K > 0 && x.numel() % K == 0, op, "x " + x.describe() + " is not rows of K = " + std::to_string(K) + " for weight " + w.describe());
  check(matmul_type_supported(w.dtype, K), op, "no CUDA kernel for weight " + w.describe() + " (type, or K not a whole number of blocks)");
  const int64_t M = x.numel() / K;
  check(out.numel() == M * N, op, "out " + out.describe() + " is not [" + std::to_string(M) + ", " + std::to_string(N) + "]");
  check(M < (1LL << 31) && N < (1LL << 31), op, "shape too large");
  if (M == 0 || N == 0) return;
  const TypeTraits* tr = type_traits(w.dtype);
  const int64_t rb = row_bytes(*tr, K);
  ActQ view;
  if (M <= gemv_rows(w.dtype)) return gemv(w.data, w.dtype, rb, x.as<float>(), M, K, N, out.as<float>(), q8k_of(x, K, &view));
  if (options().precision == Precision::F32) return matmul_f32(x, w, M, K, N, rb, out.as<float>());
  // Tensor-core kernel up to 64 rows: a Q4_K layer of llama-3.1-8b takes 203 / 315 / 400 µs at
  // M = 8 / 16 / 64 there against ~435 µs dequantized for cuBLAS (H200), which wins from M ≈ 128.
  const int mma_rows = options().mma_max_rows < 0 ? 64 : options().mma_max_rows;
  if (M <= mma_rows && mma_supported(w.dtype, K)) return matmul_mma(w.data, w.dtype, rb, x.as<float>(), M, K, N, out.as<float>());
  matmul_bf16(x, w, M, K, N, rb, out.as<float>());
}

}  // namespace kt::cuda
