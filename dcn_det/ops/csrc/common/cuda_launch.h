// Launch configuration shared by the CUDA kernels: 1-D grid-stride loops.
#pragma once

#include <ATen/cuda/CUDAContext.h>

#include <algorithm>
#include <cstdint>

namespace dcn_det {

constexpr int kCudaThreads = 256;

inline unsigned int cuda_blocks_for(int64_t total) {
  // Grid-stride loops cover the rest; 4096 blocks saturate any current GPU.
  const int64_t blocks = (total + kCudaThreads - 1) / kCudaThreads;
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min<int64_t>(blocks, 4096)));
}

#define DCN_CUDA_KERNEL_LOOP(i, n)                                                  \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);         \
       i += int64_t(blockDim.x) * gridDim.x)

}  // namespace dcn_det
