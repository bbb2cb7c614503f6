// CUDA kernels of dcn_det::deform_conv2d: one thread per element over the bodies
// of common/deform_conv2d_elements.h, plugged into the shared driver (the GEMMs
// run in cuBLAS through at::bmm).
//
// col2im scatters with atomicAdd, so the input gradient is not bitwise
// deterministic. Under torch.use_deterministic_algorithms(True) it switches to
// col2im_deterministic_kernel: one thread per (image, channel) plane, scattering
// its K*P columns in a fixed order with plain adds -- bitwise reproducible, and
// much slower (only nb*C threads).
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "../common/deform_conv2d_driver.h"

namespace dcn_det {
namespace {

template <typename T>
__global__ void fill_samples_kernel(DeformConv2dGeometry g, const T* offset, const T* mask,
                                    int64_t total, int64_t* sample_index, T* sample_weight) {
  DCN_CUDA_KERNEL_LOOP(s, total) {
    deform_conv2d_fill_sample(g, offset, mask, s, sample_index, sample_weight);
  }
}

template <typename T>
__global__ void im2col_kernel(DeformConv2dGeometry g, const T* input, const int64_t* sample_index,
                              const T* sample_weight, int64_t nb, int64_t total, T* columns) {
  const int64_t K = g.taps();
  const int64_t P = g.out_pixels();
  DCN_CUDA_KERNEL_LOOP(e, total) {
    const int64_t row = e / (nb * P);
    const int64_t rest = e - row * nb * P;
    const int64_t b = rest / P;
    const int64_t p = rest - b * P;
    columns[e] = deform_conv2d_column_value(g, input, sample_index, sample_weight, row / K,
                                            row % K, b, p);
  }
}

template <typename T>
__global__ void col2im_kernel(DeformConv2dGeometry g, const T* grad_columns,
                              const int64_t* sample_index, const T* sample_weight, int64_t nb,
                              int64_t total, T* grad_input) {
  const int64_t K = g.taps();
  const int64_t P = g.out_pixels();
  const auto add = [](T* dst, T v) { atomicAdd(dst, v); };
  DCN_CUDA_KERNEL_LOOP(e, total) {
    const int64_t row = e / (nb * P);
    const int64_t rest = e - row * nb * P;
    const int64_t b = rest / P;
    const int64_t p = rest - b * P;
    deform_conv2d_scatter_column(g, grad_columns[e], sample_index, sample_weight, row / K,
                                 row % K, b, p, grad_input, add);
  }
}

template <typename T>
__global__ void col2im_deterministic_kernel(DeformConv2dGeometry g, const T* grad_columns,
                                            const int64_t* sample_index, const T* sample_weight,
                                            int64_t nb, int64_t planes, T* grad_input) {
  const int64_t K = g.taps();
  const int64_t P = g.out_pixels();
  const auto add = [](T* dst, T v) { *dst += v; };  // this thread owns the plane
  DCN_CUDA_KERNEL_LOOP(bc, planes) {
    const int64_t b = bc / g.channels;
    const int64_t c = bc - b * g.channels;
    for (int64_t k = 0; k < K; ++k) {
      const T* gc = grad_columns + (c * K + k) * nb * P + b * P;
      for (int64_t p = 0; p < P; ++p) {
        deform_conv2d_scatter_column(g, gc[p], sample_index, sample_weight, c, k, b, p, grad_input, add);
      }
    }
  }
}

template <typename T>
__global__ void coordinate_grad_kernel(DeformConv2dGeometry g, const T* input, const T* offset,
                                       const T* mask, const T* grad_columns, int64_t nb,
                                       int64_t total, T* grad_offset, T* grad_mask) {
  DCN_CUDA_KERNEL_LOOP(s, total) {
    deform_conv2d_coordinate_grad(g, input, offset, mask, grad_columns, nb, s, grad_offset,
                                  grad_mask);
  }
}

struct CudaBackend {
  using Guard = c10::cuda::CUDAGuard;

  template <typename T>
  static void fill_samples(const DeformConv2dGeometry& g, const T* offset, const T* mask,
                           int64_t nb, int64_t* sample_index, T* sample_weight) {
    const int64_t total = nb * g.samples_per_image();
    if (total == 0) return;
    fill_samples_kernel<T><<<cuda_blocks_for(total), kCudaThreads, 0,
                             at::cuda::getCurrentCUDAStream()>>>(g, offset, mask, total,
                                                                 sample_index, sample_weight);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  template <typename T>
  static void im2col(const DeformConv2dGeometry& g, const T* input, const int64_t* sample_index,
                     const T* sample_weight, int64_t nb, T* columns) {
    const int64_t total = g.channels * g.taps() * nb * g.out_pixels();
    if (total == 0) return;
    im2col_kernel<T><<<cuda_blocks_for(total), kCudaThreads, 0,
                       at::cuda::getCurrentCUDAStream()>>>(g, input, sample_index, sample_weight,
                                                           nb, total, columns);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  template <typename T>
  static void col2im(const DeformConv2dGeometry& g, const T* grad_columns,
                     const int64_t* sample_index, const T* sample_weight, int64_t nb,
                     T* grad_input) {
    const int64_t total = g.channels * g.taps() * nb * g.out_pixels();
    if (total == 0) return;
    if (at::globalContext().deterministicAlgorithms()) {
      const int64_t planes = nb * g.channels;
      col2im_deterministic_kernel<T><<<cuda_blocks_for(planes), kCudaThreads, 0,
                                       at::cuda::getCurrentCUDAStream()>>>(
          g, grad_columns, sample_index, sample_weight, nb, planes, grad_input);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      return;
    }
    col2im_kernel<T><<<cuda_blocks_for(total), kCudaThreads, 0,
                       at::cuda::getCurrentCUDAStream()>>>(g, grad_columns, sample_index,
                                                           sample_weight, nb, total, grad_input);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  template <typename T>
  static void coordinate_grad(const DeformConv2dGeometry& g, const T* input, const T* offset,
                              const T* mask, const T* grad_columns, int64_t nb, T* grad_offset,
                              T* grad_mask) {
    const int64_t total = nb * g.samples_per_image();
    if (total == 0) return;
    coordinate_grad_kernel<T><<<cuda_blocks_for(total), kCudaThreads, 0,
                                at::cuda::getCurrentCUDAStream()>>>(
        g, input, offset, mask, grad_columns, nb, total, grad_offset, grad_mask);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(dcn_det, CUDA, m) {
  m.impl("deform_conv2d", &deform_conv2d_forward_kernel<CudaBackend>);
  m.impl("_deform_conv2d_backward", &deform_conv2d_backward_kernel<CudaBackend>);
}

}  // namespace dcn_det
