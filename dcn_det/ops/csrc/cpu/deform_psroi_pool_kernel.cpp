// CPU kernels of dcn_det::deform_psroi_pool: at::parallel_for over the per-bin
// bodies of common/deform_psroi_pool_elements.h. The device (CUDA) algorithm of
// common/deform_psroi_pool_driver.h also runs here, for the tests, behind the test
// suite's switch (the host device path, device_path.h).
//
// All output channels of one offset class (all channels when no_trans) share every
// sample position of a bin, so each task gathers a bin's samples (corners and weights)
// once and then loops over the class's channels: the per-sample cost is 4 loads and 4
// multiply-adds, as in a plain RoIAlign.
//
// Backward without atomics, deterministic: the input gradient is computed per block of
// output channels (disjoint output channels read disjoint input channels), the offset
// gradient per RoI (a task owns that RoI's offsets).
//
// group_size 1 (deformable RoI pooling of Faster R-CNN) takes the channels-last path of
// deform_psroi_pool_channels_last.h instead: the channels of a class are one contiguous
// run per sample corner there.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "../common/deform_psroi_pool_driver.h"
#include "deform_psroi_pool_channels_last.h"
#include "device_path.h"
#include "isa/loop_tables.h"

namespace dcn_det {
namespace {

template <typename T>
using Samples = std::vector<PSRoISample<T>>;

using cpu::channels_per_sampling_class;
using cpu::sampling_classes;

template <typename T>
int64_t gather_samples(const DeformPSRoIPoolGeometry& g, const PSRoIBin<T>& bin, Samples<T>& samples) {
  samples.clear();
  deform_psroi_for_each_sample(g, bin, [&](const PSRoISample<T>& s) { samples.push_back(s); });
  return static_cast<int64_t>(samples.size());
}

template <typename T>
const T* plane_of(const DeformPSRoIPoolGeometry& g, const T* data, const PSRoIBin<T>& bin, int64_t channel) {
  return data + (bin.batch * g.channels + channel) * g.height * g.width;
}

// [N, C, H, W] data at `data` as a contiguous [N, H, W, C] tensor.
template <typename T>
at::Tensor to_channels_last(const DeformPSRoIPoolGeometry& g, const T* data) {
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  return at::from_blob(const_cast<T*>(data), {g.batch, g.channels, g.height, g.width}, options)
      .permute({0, 2, 3, 1})
      .contiguous();
}

// [R, C, bins] at `data` as a contiguous [R, bins, C] tensor.
template <typename T>
at::Tensor bins_outer(const DeformPSRoIPoolGeometry& g, const T* data, int64_t num_rois) {
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  return at::from_blob(const_cast<T*>(data), {num_rois, g.output_dim, g.bins()}, options).transpose(1, 2).contiguous();
}

struct CpuBackend {
  struct Guard {
    explicit Guard(const c10::Device&) {}
  };

  template <typename T>
  static void forward_group1(const DeformPSRoIPoolGeometry& g, const T* input, const T* rois, const T* offset,
                             int64_t num_rois, T* output) {
    const cpu::GatheredBins<T> gathered(g, rois, offset, num_rois);
    const at::Tensor input_nhwc = to_channels_last(g, input);
    at::Tensor out = at::empty({num_rois, g.bins(), g.output_dim}, input_nhwc.options());
    cpu::deform_psroi_pool_loops<T>().forward(gathered, input_nhwc.const_data_ptr<T>(), num_rois, out.mutable_data_ptr<T>());
    at::from_blob(output, {num_rois, g.output_dim, g.bins()}, input_nhwc.options()).copy_(out.transpose(1, 2));
  }

  template <typename T>
  static void backward_group1(const DeformPSRoIPoolGeometry& g, const T* grad_output, const T* input,
                              const T* rois, const T* offset, int64_t num_rois, T* grad_input, T* grad_offset) {
    const cpu::GatheredBins<T> gathered(g, rois, offset, num_rois);
    const at::Tensor go = bins_outer(g, grad_output, num_rois);
    const at::Tensor input_nhwc = to_channels_last(g, input);
    at::Tensor grad_nhwc = at::zeros({g.batch, g.height, g.width, g.channels}, input_nhwc.options());
    cpu::deform_psroi_pool_loops<T>().input_grad(gathered, go.const_data_ptr<T>(), num_rois, grad_nhwc.mutable_data_ptr<T>());
    at::from_blob(grad_input, {g.batch, g.channels, g.height, g.width}, input_nhwc.options())
        .add_(grad_nhwc.permute({0, 3, 1, 2}));
    if (!g.no_trans) {
      cpu::deform_psroi_pool_loops<T>().offset_grad(gathered, input_nhwc.const_data_ptr<T>(), go.const_data_ptr<T>(),
                                           num_rois, grad_offset);
    }
  }

  template <typename T>
  static void forward(const DeformPSRoIPoolGeometry& g, const T* input, const T* rois,
                      const T* offset, int64_t num_rois, T* output) {
    if (g.group_size == 1) {
      forward_group1(g, input, rois, offset, num_rois, output);
      return;
    }
    const int64_t classes = sampling_classes(g), per_class = channels_per_sampling_class(g);
    const int64_t bins = g.bins();
    at::parallel_for(0, num_rois * classes, 1, [&](int64_t begin, int64_t end) {
      Samples<T> samples;
      for (int64_t task = begin; task < end; ++task) {
        const int64_t r = task / classes;
        const int64_t ctop0 = (task % classes) * per_class;
        for (int64_t bin_id = 0; bin_id < bins; ++bin_id) {
          const auto bin = deform_psroi_bin(g, rois, offset, r, ctop0, bin_id / g.pooled_size, bin_id % g.pooled_size);
          const int64_t count = bin.batch < 0 ? 0 : gather_samples(g, bin, samples);
          if (count == 0) continue;  // output stays 0
          for (int64_t ctop = ctop0; ctop < ctop0 + per_class; ++ctop) {
            const T* plane = plane_of(g, input, bin, deform_psroi_channel_of(g, bin, ctop0, ctop));
            T sum = T(0);
            for (const auto& s : samples) sum += deform_psroi_sample_value(plane, s);
            output[(r * g.output_dim + ctop) * bins + bin_id] = sum / static_cast<T>(count);
          }
        }
      }
    });
  }

  template <typename T>
  static void backward(const DeformPSRoIPoolGeometry& g, const T* grad_output, const T* input,
                       const T* rois, const T* offset, int64_t num_rois, T* grad_input,
                       T* grad_offset) {
    if (g.group_size == 1) {
      backward_group1(g, grad_output, input, rois, offset, num_rois, grad_input, grad_offset);
      return;
    }
    const int64_t classes = sampling_classes(g), per_class = channels_per_sampling_class(g);
    const int64_t bins = g.bins();
    // Input gradient: tasks own blocks of a class's output channels. Enough blocks to
    // keep every thread busy even with a single class; each block re-derives the bins.
    const int64_t blocks_per_class =
        std::min<int64_t>(per_class, std::max<int64_t>(1, (4 * at::get_num_threads() + classes - 1) / classes));
    const int64_t block = (per_class + blocks_per_class - 1) / blocks_per_class;
    at::parallel_for(0, classes * blocks_per_class, 1, [&](int64_t begin, int64_t end) {
      Samples<T> samples;
      for (int64_t task = begin; task < end; ++task) {
        const int64_t ctop0 = (task / blocks_per_class) * per_class + (task % blocks_per_class) * block;
        const int64_t ctop1 = std::min(ctop0 + block, (task / blocks_per_class + 1) * per_class);
        if (ctop0 >= ctop1) continue;
        for (int64_t r = 0; r < num_rois; ++r) {
          for (int64_t bin_id = 0; bin_id < bins; ++bin_id) {
            const auto bin = deform_psroi_bin(g, rois, offset, r, ctop0, bin_id / g.pooled_size, bin_id % g.pooled_size);
            const int64_t count = bin.batch < 0 ? 0 : gather_samples(g, bin, samples);
            if (count == 0) continue;
            for (int64_t ctop = ctop0; ctop < ctop1; ++ctop) {
              const T diff = grad_output[(r * g.output_dim + ctop) * bins + bin_id] / static_cast<T>(count);
              T* plane = grad_input + (bin.batch * g.channels + deform_psroi_channel_of(g, bin, ctop0, ctop)) * g.height * g.width;
              for (const auto& s : samples) deform_psroi_sample_scatter(plane, s, diff, OwnedAdd());
            }
          }
        }
      }
    });
    if (g.no_trans) return;
    const int64_t part_area = g.part_size * g.part_size;
    at::parallel_for(0, num_rois, 1, [&](int64_t begin, int64_t end) {
      Samples<T> samples;
      for (int64_t r = begin; r < end; ++r) {
        for (int64_t cls = 0; cls < classes; ++cls) {
          const int64_t ctop0 = cls * per_class;
          for (int64_t bin_id = 0; bin_id < bins; ++bin_id) {
            const auto bin = deform_psroi_bin(g, rois, offset, r, ctop0, bin_id / g.pooled_size, bin_id % g.pooled_size);
            const int64_t count = bin.batch < 0 ? 0 : gather_samples(g, bin, samples);
            if (count == 0) continue;
            T gx = T(0), gy = T(0);
            for (int64_t ctop = ctop0; ctop < ctop0 + per_class; ++ctop) {
              const T diff = grad_output[(r * g.output_dim + ctop) * bins + bin_id] / static_cast<T>(count);
              const T* plane = plane_of(g, input, bin, deform_psroi_channel_of(g, bin, ctop0, ctop));
              T sx = T(0), sy = T(0);
              for (const auto& s : samples) {
                T x, y;
                deform_psroi_sample_slopes(plane, s, x, y);
                sx += x;
                sy += y;
              }
              gx += sx * diff;
              gy += sy * diff;
            }
            T scale_x, scale_y;
            deform_psroi_offset_scale(g, bin, scale_x, scale_y);
            grad_offset[bin.offset_x] += gx * scale_x;
            grad_offset[bin.offset_x + part_area] += gy * scale_y;
          }
        }
      }
    });
  }
};

}  // namespace

using HostDeformPSRoIPool = DeformPSRoIPoolDeviceBackend<HostLauncher>;

TORCH_LIBRARY_IMPL(dcn_det, CPU, m) {
  m.impl("deform_psroi_pool", &RoutedKernel<&deform_psroi_pool_forward_kernel<CpuBackend>,
                                            &deform_psroi_pool_forward_kernel<HostDeformPSRoIPool>>::call);
  m.impl("_deform_psroi_pool_backward",
         &RoutedKernel<&deform_psroi_pool_backward_kernel<CpuBackend>,
                       &deform_psroi_pool_backward_kernel<HostDeformPSRoIPool>>::call);
}

}  // namespace dcn_det
