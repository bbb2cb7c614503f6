// CPU kernels of dcn_det::deform_conv2d: at::parallel_for loops over the element
// bodies of common/deform_conv2d_elements.h, plugged into the shared driver.
//
// col2im runs one task per (image, channel) plane, so every input-gradient plane
// has exactly one writer: no atomics, and the result is deterministic.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../common/deform_conv2d_driver.h"

namespace dcn_det {
namespace {

struct CpuBackend {
  struct Guard {
    explicit Guard(const c10::Device&) {}
  };
  static constexpr bool kDeterministicBackward = true;  // one writer per input plane

  template <typename T>
  static void fill_samples(const DeformConv2dGeometry& g, const T* offset, const T* mask,
                           int64_t nb, int64_t* sample_index, T* sample_weight) {
    at::parallel_for(0, nb * g.samples_per_image(), 2048, [&](int64_t begin, int64_t end) {
      for (int64_t s = begin; s < end; ++s) {
        deform_conv2d_fill_sample(g, offset, mask, s, sample_index, sample_weight);
      }
    });
  }

  template <typename T>
  static void im2col(const DeformConv2dGeometry& g, const T* input, const int64_t* sample_index,
                     const T* sample_weight, int64_t nb, T* columns) {
    const int64_t K = g.taps();
    const int64_t P = g.out_pixels();
    // One task per (row = c*K + k, image b): a contiguous run of P columns.
    const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(P, 1));
    at::parallel_for(0, g.channels * K * nb, grain, [&](int64_t begin, int64_t end) {
      for (int64_t rb = begin; rb < end; ++rb) {
        const int64_t row = rb / nb;
        const int64_t b = rb - row * nb;
        const int64_t c = row / K;
        const int64_t k = row - c * K;
        T* out = columns + row * nb * P + b * P;
        for (int64_t p = 0; p < P; ++p) {
          out[p] = deform_conv2d_column_value(g, input, sample_index, sample_weight, c, k, b, p);
        }
      }
    });
  }

  template <typename T>
  static void col2im(const DeformConv2dGeometry& g, const T* grad_columns,
                     const int64_t* sample_index, const T* sample_weight, int64_t nb,
                     T* grad_input) {
    const int64_t K = g.taps();
    const int64_t P = g.out_pixels();
    const auto add = [](T* dst, T v) { *dst += v; };
    at::parallel_for(0, nb * g.channels, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bc = begin; bc < end; ++bc) {
        const int64_t b = bc / g.channels;
        const int64_t c = bc - b * g.channels;
        for (int64_t k = 0; k < K; ++k) {
          const T* gc = grad_columns + (c * K + k) * nb * P + b * P;
          for (int64_t p = 0; p < P; ++p) {
            deform_conv2d_scatter_column(g, gc[p], sample_index, sample_weight, c, k, b, p,
                                         grad_input, add);
          }
        }
      }
    });
  }

  template <typename T>
  static void coordinate_grad(const DeformConv2dGeometry& g, const T* input, const T* offset,
                              const T* mask, const T* grad_columns, int64_t nb, T* grad_offset,
                              T* grad_mask) {
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(g.channels_per_offset_group(), 1));
    at::parallel_for(0, nb * g.samples_per_image(), grain, [&](int64_t begin, int64_t end) {
      for (int64_t s = begin; s < end; ++s) {
        deform_conv2d_coordinate_grad(g, input, offset, mask, grad_columns, nb, s, grad_offset,
                                      grad_mask);
      }
    });
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(dcn_det, CPU, m) {
  m.impl("deform_conv2d", &deform_conv2d_forward_kernel<CpuBackend>);
  m.impl("_deform_conv2d_backward", &deform_conv2d_backward_kernel<CpuBackend>);
}

}  // namespace dcn_det
