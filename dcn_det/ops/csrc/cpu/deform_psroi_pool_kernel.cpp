// CPU kernels of dcn_det::deform_psroi_pool: at::parallel_for over the per-bin
// bodies of common/deform_psroi_pool_elements.h.
//
// Backward without atomics, deterministic: the input gradient is computed per input
// channel (each bin reads exactly one position-sensitive channel, so a task owns a
// channel's planes in every image), the offset gradient per RoI (a task owns that
// RoI's offsets).
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../common/deform_psroi_pool_driver.h"

namespace dcn_det {
namespace {

struct CpuBackend {
  template <typename T>
  static void forward(const DeformPSRoIPoolGeometry& g, const T* input, const T* rois,
                      const T* offset, int64_t num_rois, T* output) {
    const int64_t bins = g.bins();
    const int64_t grain = std::max<int64_t>(1, 1024 / (g.sample_per_part * g.sample_per_part));
    at::parallel_for(0, num_rois * g.output_dim * bins, grain, [&](int64_t begin, int64_t end) {
      for (int64_t e = begin; e < end; ++e) {
        const int64_t pw = e % g.pooled_size;
        const int64_t ph = (e / g.pooled_size) % g.pooled_size;
        const int64_t ctop = (e / bins) % g.output_dim;
        const int64_t r = e / (bins * g.output_dim);
        output[e] = deform_psroi_bin_value(g, input, deform_psroi_bin(g, rois, offset, r, ctop, ph, pw));
      }
    });
  }

  template <typename T>
  static void backward(const DeformPSRoIPoolGeometry& g, const T* grad_output, const T* input,
                       const T* rois, const T* offset, int64_t num_rois, T* grad_input,
                       T* grad_offset) {
    const int64_t bins = g.bins();
    const int64_t gs = g.group_size;
    const auto group_of = [&](int64_t p) {
      return std::min<int64_t>(std::max<int64_t>((p * gs) / g.pooled_size, 0), gs - 1);
    };
    const auto add = [](T* dst, T v) { *dst += v; };
    at::parallel_for(0, g.channels, 1, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        const int64_t ctop = c / (gs * gs);
        const int64_t gh = (c / gs) % gs;
        const int64_t gw = c % gs;
        for (int64_t r = 0; r < num_rois; ++r) {
          for (int64_t ph = 0; ph < g.pooled_size; ++ph) {
            if (group_of(ph) != gh) continue;
            for (int64_t pw = 0; pw < g.pooled_size; ++pw) {
              if (group_of(pw) != gw) continue;
              const T grad = grad_output[(r * g.output_dim + ctop) * bins + ph * g.pooled_size + pw];
              deform_psroi_bin_input_grad(g, deform_psroi_bin(g, rois, offset, r, ctop, ph, pw),
                                          grad, grad_input, add);
            }
          }
        }
      }
    });
    if (g.no_trans) return;
    const int64_t part_area = g.part_size * g.part_size;
    at::parallel_for(0, num_rois, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        for (int64_t ctop = 0; ctop < g.output_dim; ++ctop) {
          for (int64_t bin_id = 0; bin_id < bins; ++bin_id) {
            const int64_t ph = bin_id / g.pooled_size;
            const int64_t pw = bin_id % g.pooled_size;
            const auto bin = deform_psroi_bin(g, rois, offset, r, ctop, ph, pw);
            T gx, gy;
            deform_psroi_bin_offset_grad(g, input, bin, grad_output[(r * g.output_dim + ctop) * bins + bin_id], gx, gy);
            grad_offset[bin.offset_x] += gx;
            grad_offset[bin.offset_x + part_area] += gy;
          }
        }
      }
    });
  }
};

at::Tensor deform_psroi_pool_forward_cpu(const at::Tensor& input, const at::Tensor& rois,
                                         const std::optional<at::Tensor>& offset,
                                         double spatial_scale, int64_t output_dim,
                                         int64_t group_size, int64_t pooled_size,
                                         int64_t part_size, int64_t sample_per_part,
                                         double trans_std, bool no_trans) {
  return deform_psroi_pool_forward_impl<CpuBackend>(
      input, rois, offset,
      make_deform_psroi_pool_params(spatial_scale, output_dim, group_size, pooled_size, part_size,
                                    sample_per_part, trans_std, no_trans));
}

std::tuple<at::Tensor, at::Tensor> deform_psroi_pool_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& rois,
    const std::optional<at::Tensor>& offset, double spatial_scale, int64_t output_dim,
    int64_t group_size, int64_t pooled_size, int64_t part_size, int64_t sample_per_part,
    double trans_std, bool no_trans) {
  return deform_psroi_pool_backward_impl<CpuBackend>(
      grad_output, input, rois, offset,
      make_deform_psroi_pool_params(spatial_scale, output_dim, group_size, pooled_size, part_size,
                                    sample_per_part, trans_std, no_trans));
}

}  // namespace

TORCH_LIBRARY_IMPL(dcn_det, CPU, m) {
  m.impl("deform_psroi_pool", &deform_psroi_pool_forward_cpu);
  m.impl("_deform_psroi_pool_backward", &deform_psroi_pool_backward_cpu);
}

}  // namespace dcn_det
