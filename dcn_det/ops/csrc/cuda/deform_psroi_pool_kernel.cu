// CUDA kernels of dcn_det::deform_psroi_pool: one thread per output bin over the
// bodies of common/deform_psroi_pool_elements.h. The backward scatters with
// atomicAdd (input and offset gradients), so it is not bitwise deterministic.
// Under torch.use_deterministic_algorithms(True) it runs the two *_deterministic
// kernels instead: every gradient element has one owning thread that accumulates
// in a fixed order (slower: far fewer threads).
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "../common/deform_psroi_pool_driver.h"

namespace dcn_det {
namespace {

template <typename T>
__device__ PSRoIBin<T> bin_of_output(const DeformPSRoIPoolGeometry& g, const T* rois,
                                     const T* offset, int64_t e) {
  const int64_t bins = g.bins();
  const int64_t pw = e % g.pooled_size;
  const int64_t ph = (e / g.pooled_size) % g.pooled_size;
  const int64_t ctop = (e / bins) % g.output_dim;
  const int64_t r = e / (bins * g.output_dim);
  return deform_psroi_bin(g, rois, offset, r, ctop, ph, pw);
}

template <typename T>
__global__ void psroi_forward_cuda_kernel(DeformPSRoIPoolGeometry g, const T* input,
                                                 const T* rois, const T* offset, int64_t total,
                                                 T* output) {
  DCN_CUDA_KERNEL_LOOP(e, total) {
    output[e] = deform_psroi_bin_value(g, input, bin_of_output(g, rois, offset, e));
  }
}

template <typename T>
__global__ void psroi_backward_cuda_kernel(DeformPSRoIPoolGeometry g, const T* grad_output,
                                                  const T* input, const T* rois, const T* offset,
                                                  int64_t total, T* grad_input, T* grad_offset) {
  const auto add = [](T* dst, T v) { atomicAdd(dst, v); };
  const int64_t part_area = g.part_size * g.part_size;
  DCN_CUDA_KERNEL_LOOP(e, total) {
    const auto bin = bin_of_output(g, rois, offset, e);
    const int64_t count = deform_psroi_bin_count(g, bin);  // also 0 for an invalid batch index
    if (count == 0) continue;
    const T diff = grad_output[e] / static_cast<T>(count);
    deform_psroi_bin_input_grad(g, bin, diff, grad_input, add);
    if (!g.no_trans) {
      T gx, gy;
      deform_psroi_bin_offset_grad(g, input, bin, diff, gx, gy);
      atomicAdd(grad_offset + bin.offset_x, gx);
      atomicAdd(grad_offset + bin.offset_x + part_area, gy);
    }
  }
}

// Input gradient, one thread per (image, output channel): the input channels an
// output channel reads (one per group cell) belong to it alone.
template <typename T>
__global__ void psroi_input_grad_deterministic_kernel(DeformPSRoIPoolGeometry g, const T* grad_output,
                                                      const T* rois, const T* offset, int64_t num_rois,
                                                      int64_t owners, T* grad_input) {
  const auto add = [](T* dst, T v) { *dst += v; };
  const int64_t bins = g.bins();
  DCN_CUDA_KERNEL_LOOP(owner, owners) {
    const int64_t b = owner / g.output_dim;
    const int64_t ctop = owner - b * g.output_dim;
    for (int64_t r = 0; r < num_rois; ++r) {
      for (int64_t bin_id = 0; bin_id < bins; ++bin_id) {
        const auto bin = deform_psroi_bin(g, rois, offset, r, ctop, bin_id / g.pooled_size, bin_id % g.pooled_size);
        if (bin.batch != b) continue;
        const int64_t count = deform_psroi_bin_count(g, bin);
        if (count == 0) continue;
        const T diff = grad_output[(r * g.output_dim + ctop) * bins + bin_id] / static_cast<T>(count);
        deform_psroi_bin_input_grad(g, bin, diff, grad_input, add);
      }
    }
  }
}

// Offset gradient, one thread per (RoI, offset class): all bins and channels that
// share the class's offsets are summed by it.
template <typename T>
__global__ void psroi_offset_grad_deterministic_kernel(DeformPSRoIPoolGeometry g, const T* grad_output,
                                                       const T* input, const T* rois, const T* offset,
                                                       int64_t owners, T* grad_offset) {
  const int64_t bins = g.bins();
  const int64_t part_area = g.part_size * g.part_size;
  DCN_CUDA_KERNEL_LOOP(owner, owners) {
    const int64_t r = owner / g.num_classes;
    const int64_t cls = owner - r * g.num_classes;
    for (int64_t ctop = cls * g.channels_each_class; ctop < (cls + 1) * g.channels_each_class; ++ctop) {
      for (int64_t bin_id = 0; bin_id < bins; ++bin_id) {
        const auto bin = deform_psroi_bin(g, rois, offset, r, ctop, bin_id / g.pooled_size, bin_id % g.pooled_size);
        const int64_t count = deform_psroi_bin_count(g, bin);
        if (count == 0) continue;
        const T diff = grad_output[(r * g.output_dim + ctop) * bins + bin_id] / static_cast<T>(count);
        T gx, gy;
        deform_psroi_bin_offset_grad(g, input, bin, diff, gx, gy);
        grad_offset[bin.offset_x] += gx;
        grad_offset[bin.offset_x + part_area] += gy;
      }
    }
  }
}

struct CudaBackend {
  using Guard = c10::cuda::CUDAGuard;

  template <typename T>
  static void forward(const DeformPSRoIPoolGeometry& g, const T* input, const T* rois,
                      const T* offset, int64_t num_rois, T* output) {
    const int64_t total = num_rois * g.output_dim * g.bins();
    psroi_forward_cuda_kernel<T><<<cuda_blocks_for(total), kCudaThreads, 0,
                                          at::cuda::getCurrentCUDAStream()>>>(
        g, input, rois, offset, total, output);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  template <typename T>
  static void backward(const DeformPSRoIPoolGeometry& g, const T* grad_output, const T* input,
                       const T* rois, const T* offset, int64_t num_rois, T* grad_input,
                       T* grad_offset) {
    const auto stream = at::cuda::getCurrentCUDAStream();
    if (at::globalContext().deterministicAlgorithms()) {
      const int64_t input_owners = g.batch * g.output_dim;
      psroi_input_grad_deterministic_kernel<T><<<cuda_blocks_for(input_owners), kCudaThreads, 0, stream>>>(
          g, grad_output, rois, offset, num_rois, input_owners, grad_input);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      if (!g.no_trans) {
        const int64_t offset_owners = num_rois * g.num_classes;
        psroi_offset_grad_deterministic_kernel<T><<<cuda_blocks_for(offset_owners), kCudaThreads, 0, stream>>>(
            g, grad_output, input, rois, offset, offset_owners, grad_offset);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
      return;
    }
    const int64_t total = num_rois * g.output_dim * g.bins();
    psroi_backward_cuda_kernel<T><<<cuda_blocks_for(total), kCudaThreads, 0,
                                           at::cuda::getCurrentCUDAStream()>>>(
        g, grad_output, input, rois, offset, total, grad_input, grad_offset);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(dcn_det, CUDA, m) {
  m.impl("deform_psroi_pool", &deform_psroi_pool_forward_kernel<CudaBackend>);
  m.impl("_deform_psroi_pool_backward", &deform_psroi_pool_backward_kernel<CudaBackend>);
}

}  // namespace dcn_det
