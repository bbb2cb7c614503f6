// The CUDA launcher of the device algorithms (common/*_driver.h): one GPU thread
// per index of a 1-D grid-stride loop, each running one *Op struct of
// common/*_elements.h. This file holds no element math: a __global__ kernel here
// only launches and loops over indices (the host device path,
// cpu/host_launch.h, runs the same Ops on the CPU for the tests).
#pragma once

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <cstdint>

namespace dcn_det {

constexpr int kCudaThreads = 256;

inline unsigned int cuda_blocks_for(int64_t total) {
  // Grid-stride loops cover the rest; 4096 blocks saturate any current GPU.
  const int64_t blocks = (total + kCudaThreads - 1) / kCudaThreads;
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min<int64_t>(blocks, 4096)));
}

template <typename Op>
__global__ void for_each_index_kernel(Op op, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    op(i);
  }
}

struct CudaLauncher {
  using Guard = c10::cuda::CUDAGuard;

  template <typename Op>
  static void launch(int64_t n, const Op& op) {
    if (n <= 0) return;
    for_each_index_kernel<Op><<<cuda_blocks_for(n), kCudaThreads, 0, at::cuda::getCurrentCUDAStream()>>>(op, n);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

}  // namespace dcn_det
