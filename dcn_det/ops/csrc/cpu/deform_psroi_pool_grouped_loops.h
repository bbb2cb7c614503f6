// The three loops of the CPU deformable PS-RoI pooling with group_size > 1 (R-FCN's
// position-sensitive score maps; forward, input gradient, offset gradient), on the NCHW
// tensors of the op's interface, over the per-bin bodies of
// common/deform_psroi_pool_elements.h (see cpu/deform_psroi_pool_kernel.cpp for the
// work split). Compiled once per instruction set (cpu/isa/): include only after the
// baseline headers and inside that file's target pragma.
#pragma once

#include <ATen/Parallel.h>

#include <vector>

#include "../common/atomic_add.h"
#include "../common/deform_psroi_pool_elements.h"
#include "deform_psroi_pool_channels_last.h"

namespace dcn_det {
namespace cpu {
namespace DCN_CPU_ISA {

template <typename T>
using PSRoISamples = std::vector<PSRoISample<T>>;

// The samples of one bin, in the order the device kernels visit them; returns their count.
template <typename T>
int64_t gather_bin_samples(const DeformPSRoIPoolGeometry& g, const PSRoIBin<T>& bin, PSRoISamples<T>& samples) {
  samples.clear();
  deform_psroi_for_each_sample(g, bin, [&](const PSRoISample<T>& s) { samples.push_back(s); });
  return static_cast<int64_t>(samples.size());
}

template <typename T>
const T* bin_plane(const DeformPSRoIPoolGeometry& g, const T* data, const PSRoIBin<T>& bin, int64_t channel) {
  return data + (bin.batch * g.channels + channel) * g.height * g.width;
}

// output [R, output_dim, bins]: one task per (RoI, offset class).
template <typename T>
void psroi_forward_grouped(const DeformPSRoIPoolGeometry& g, const T* input, const T* rois, const T* offset,
                           int64_t num_rois, T* output) {
  const int64_t classes = sampling_classes(g), per_class = channels_per_sampling_class(g);
  const int64_t bins = g.bins();
  at::parallel_for(0, num_rois * classes, 1, [&](int64_t begin, int64_t end) {
    PSRoISamples<T> samples;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t r = task / classes;
      const int64_t ctop0 = (task % classes) * per_class;
      for (int64_t bin_id = 0; bin_id < bins; ++bin_id) {
        const auto bin = deform_psroi_bin(g, rois, offset, r, ctop0, bin_id / g.pooled_size, bin_id % g.pooled_size);
        const int64_t count = bin.batch < 0 ? 0 : gather_bin_samples(g, bin, samples);
        if (count == 0) continue;  // output stays 0
        for (int64_t ctop = ctop0; ctop < ctop0 + per_class; ++ctop) {
          const T* plane = bin_plane(g, input, bin, deform_psroi_channel_of(g, bin, ctop0, ctop));
          T sum = T(0);
          for (const auto& s : samples) sum += deform_psroi_sample_value(plane, s);
          output[(r * g.output_dim + ctop) * bins + bin_id] = sum / static_cast<T>(count);
        }
      }
    }
  });
}

// grad_input [N, C, H, W] (accumulated into): tasks own blocks of a class's output
// channels, so every input channel has one writer. Enough blocks to keep every thread
// busy even with a single class; each block re-derives the bins.
template <typename T>
void psroi_input_grad_grouped(const DeformPSRoIPoolGeometry& g, const T* grad_output, const T* rois,
                              const T* offset, int64_t num_rois, T* grad_input) {
  const int64_t classes = sampling_classes(g), per_class = channels_per_sampling_class(g);
  const int64_t bins = g.bins();
  const int64_t blocks_per_class =
      std::min<int64_t>(per_class, std::max<int64_t>(1, (4 * at::get_num_threads() + classes - 1) / classes));
  const int64_t block = (per_class + blocks_per_class - 1) / blocks_per_class;
  at::parallel_for(0, classes * blocks_per_class, 1, [&](int64_t begin, int64_t end) {
    PSRoISamples<T> samples;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t ctop0 = (task / blocks_per_class) * per_class + (task % blocks_per_class) * block;
      const int64_t ctop1 = std::min(ctop0 + block, (task / blocks_per_class + 1) * per_class);
      if (ctop0 >= ctop1) continue;
      for (int64_t r = 0; r < num_rois; ++r) {
        for (int64_t bin_id = 0; bin_id < bins; ++bin_id) {
          const auto bin = deform_psroi_bin(g, rois, offset, r, ctop0, bin_id / g.pooled_size, bin_id % g.pooled_size);
          const int64_t count = bin.batch < 0 ? 0 : gather_bin_samples(g, bin, samples);
          if (count == 0) continue;
          for (int64_t ctop = ctop0; ctop < ctop1; ++ctop) {
            const T diff = grad_output[(r * g.output_dim + ctop) * bins + bin_id] / static_cast<T>(count);
            T* plane = grad_input +
                       (bin.batch * g.channels + deform_psroi_channel_of(g, bin, ctop0, ctop)) * g.height * g.width;
            for (const auto& s : samples) deform_psroi_sample_scatter(plane, s, diff, OwnedAdd());
          }
        }
      }
    }
  });
}

// grad_offset [R, 2*classes, part, part] (accumulated into): one task per RoI.
template <typename T>
void psroi_offset_grad_grouped(const DeformPSRoIPoolGeometry& g, const T* grad_output, const T* input,
                               const T* rois, const T* offset, int64_t num_rois, T* grad_offset) {
  const int64_t classes = sampling_classes(g), per_class = channels_per_sampling_class(g);
  const int64_t bins = g.bins(), part_area = g.part_size * g.part_size;
  at::parallel_for(0, num_rois, 1, [&](int64_t begin, int64_t end) {
    PSRoISamples<T> samples;
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t cls = 0; cls < classes; ++cls) {
        const int64_t ctop0 = cls * per_class;
        for (int64_t bin_id = 0; bin_id < bins; ++bin_id) {
          const auto bin = deform_psroi_bin(g, rois, offset, r, ctop0, bin_id / g.pooled_size, bin_id % g.pooled_size);
          const int64_t count = bin.batch < 0 ? 0 : gather_bin_samples(g, bin, samples);
          if (count == 0) continue;
          T gx = T(0), gy = T(0);
          for (int64_t ctop = ctop0; ctop < ctop0 + per_class; ++ctop) {
            const T diff = grad_output[(r * g.output_dim + ctop) * bins + bin_id] / static_cast<T>(count);
            const T* plane = bin_plane(g, input, bin, deform_psroi_channel_of(g, bin, ctop0, ctop));
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

}  // namespace DCN_CPU_ISA
}  // namespace cpu
}  // namespace dcn_det
