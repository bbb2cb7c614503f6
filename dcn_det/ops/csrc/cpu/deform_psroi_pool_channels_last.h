// CPU deformable RoI pooling with group_size 1 (Faster R-CNN's dpool / mdpool), channels-last.
//
// Why: with group_size 1 every output channel of an offset class reads input channel
// ctop at the same sample points, so with channels innermost a sample's 4 corners are
// 4 contiguous runs of channels and each pass is a vector loop over them (the NCHW
// path of deform_psroi_pool_kernel.cpp does 4 scattered loads per sample per channel).
// The samples of every (RoI, class, bin) are gathered once (common/'s
// deform_psroi_for_each_sample: the same skip and clamp rules) and shared by the
// forward, the input gradient and the offset gradient.
//
// Buffers: input / grad_input as [N, H, W, C]; output / grad_output as [R, bins, C].
// Deterministic: the input gradient is split by channel blocks (each element has one
// writer that visits RoIs, bins and samples in a fixed order), the offset gradient by
// RoI.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "../common/deform_psroi_pool_elements.h"
#include "vector_loops.h"

namespace dcn_det {
namespace cpu {

// Offset classes and output channels per class as the sampling sees them (no_trans: one
// class of every channel).
inline int64_t sampling_classes(const DeformPSRoIPoolGeometry& g) { return g.no_trans ? 1 : g.num_classes; }
inline int64_t channels_per_sampling_class(const DeformPSRoIPoolGeometry& g) {
  return g.no_trans ? g.output_dim : g.channels_each_class;
}

// Every (RoI, class, bin): its bin and its samples (at most sample_per_part^2, in
// slots of that size).
template <typename T>
struct GatheredBins {
  const DeformPSRoIPoolGeometry& g;
  int64_t classes, per_class, slots;
  std::vector<PSRoIBin<T>> bin;
  std::vector<int64_t> count;  // 0: nothing sampled (or invalid batch index)
  std::vector<PSRoISample<T>> samples;

  GatheredBins(const DeformPSRoIPoolGeometry& geom, const T* rois, const T* offset, int64_t num_rois)
      : g(geom),
        classes(sampling_classes(geom)),
        per_class(channels_per_sampling_class(geom)),
        slots(geom.sample_per_part * geom.sample_per_part),
        bin(num_rois * classes * geom.bins()),
        count(bin.size()),
        samples(bin.size() * slots) {
    const int64_t bins = g.bins();
    at::parallel_for(0, num_rois * classes, 1, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t r = task / classes, ctop0 = (task % classes) * per_class;
        for (int64_t b = 0; b < bins; ++b) {
          const int64_t id = task * bins + b;
          bin[id] = deform_psroi_bin(g, rois, offset, r, ctop0, b / g.pooled_size, b % g.pooled_size);
          PSRoISample<T>* out = samples.data() + id * slots;
          count[id] = deform_psroi_for_each_sample(g, bin[id], [&](const PSRoISample<T>& s) { *out++ = s; });
        }
      }
    });
  }

  // Offset of image b in an [N, H, W, C] buffer (corner index i starts at + i * C).
  int64_t image(int64_t b) const { return b * g.height * g.width * g.channels; }
};

// output [R, bins, C] (zero where nothing was sampled).
template <typename T>
void psroi_forward_channels_last(const GatheredBins<T>& gb, const T* input_nhwc, int64_t num_rois,
                                 T* output) {
  const auto& g = gb.g;
  const int64_t bins = g.bins(), C = g.output_dim;
  at::parallel_for(0, num_rois * gb.classes, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t r = task / gb.classes, ctop0 = (task % gb.classes) * gb.per_class;
      for (int64_t b = 0; b < bins; ++b) {
        const int64_t id = task * bins + b;
        T* acc = output + (r * bins + b) * C + ctop0;
        std::fill(acc, acc + gb.per_class, T(0));
        if (gb.count[id] == 0) continue;
        const PSRoISample<T>* s = gb.samples.data() + id * gb.slots;
        const T* image = input_nhwc + gb.image(gb.bin[id].batch) + ctop0;
        for (int64_t i = 0; i < gb.count[id]; ++i) {
          T w[4];
          deform_psroi_sample_weights(s[i], w);
          weighted_add4(acc, image + s[i].i00 * g.channels, image + s[i].i01 * g.channels,
                        image + s[i].i10 * g.channels, image + s[i].i11 * g.channels, w[0], w[1], w[2], w[3],
                        gb.per_class);
        }
        const T inv = T(1) / static_cast<T>(gb.count[id]);
        for (int64_t c = 0; c < gb.per_class; ++c) acc[c] *= inv;
      }
    }
  });
}

// grad_input_nhwc [N, H, W, C] += the scatter of grad_output [R, bins, C].
template <typename T>
void psroi_input_grad_channels_last(const GatheredBins<T>& gb, const T* grad_output, int64_t num_rois,
                                    T* grad_input_nhwc) {
  const auto& g = gb.g;
  const int64_t bins = g.bins(), C = g.output_dim;
  // Blocks of at least 16 channels inside a class, enough for every thread.
  const int64_t wanted = std::max<int64_t>(1, 4 * at::get_num_threads() / gb.classes);
  const int64_t block = std::max<int64_t>(16, (gb.per_class + wanted - 1) / wanted);
  const int64_t blocks = (gb.per_class + block - 1) / block;
  at::parallel_for(0, gb.classes * blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> diff(block);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t cls = task / blocks;
      const int64_t c0 = cls * gb.per_class + (task % blocks) * block;
      const int64_t n = std::min(block, (cls + 1) * gb.per_class - c0);
      for (int64_t r = 0; r < num_rois; ++r) {
        for (int64_t b = 0; b < bins; ++b) {
          const int64_t id = (r * gb.classes + cls) * bins + b;
          if (gb.count[id] == 0) continue;
          const T inv = T(1) / static_cast<T>(gb.count[id]);
          const T* go = grad_output + (r * bins + b) * C + c0;
          for (int64_t c = 0; c < n; ++c) diff[c] = go[c] * inv;
          const PSRoISample<T>* s = gb.samples.data() + id * gb.slots;
          T* image = grad_input_nhwc + gb.image(gb.bin[id].batch) + c0;
          for (int64_t i = 0; i < gb.count[id]; ++i) {
            T w[4];
            deform_psroi_sample_weights(s[i], w);
            const int64_t corner[4] = {s[i].i00, s[i].i01, s[i].i10, s[i].i11};
            if (corner[0] != corner[1] && corner[0] != corner[2] && corner[1] != corner[3] && corner[2] != corner[3]) {
              scatter_add4(image + corner[0] * g.channels, image + corner[1] * g.channels,
                           image + corner[2] * g.channels, image + corner[3] * g.channels, diff.data(), w[0],
                           w[1], w[2], w[3], n);
            } else {  // clamped or integer coordinates: corners coincide, add one at a time
              for (int j = 0; j < 4; ++j) axpy(image + corner[j] * g.channels, diff.data(), w[j], n);
            }
          }
        }
      }
    }
  });
}

// grad_offset (zero-initialised) += d loss / d offset, from grad_output [R, bins, C].
template <typename T>
void psroi_offset_grad_channels_last(const GatheredBins<T>& gb, const T* input_nhwc, const T* grad_output,
                                     int64_t num_rois, T* grad_offset) {
  const auto& g = gb.g;
  const int64_t bins = g.bins(), C = g.output_dim, part_area = g.part_size * g.part_size;
  at::parallel_for(0, num_rois, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t cls = 0; cls < gb.classes; ++cls) {
        const int64_t ctop0 = cls * gb.per_class;
        for (int64_t b = 0; b < bins; ++b) {
          const int64_t id = (r * gb.classes + cls) * bins + b;
          if (gb.count[id] == 0) continue;
          const PSRoIBin<T>& bin = gb.bin[id];
          const T* go = grad_output + (r * bins + b) * C + ctop0;
          const T* image = input_nhwc + gb.image(bin.batch) + ctop0;
          const PSRoISample<T>* s = gb.samples.data() + id * gb.slots;
          T sx = T(0), sy = T(0);
          for (int64_t i = 0; i < gb.count[id]; ++i) {
            // d[j] = sum_c grad_c * corner_j,c; the slopes of common/'s
            // deform_psroi_sample_slopes, summed over the channels.
            T d[4] = {T(0), T(0), T(0), T(0)};
            dot_products4(go, image + s[i].i00 * g.channels, image + s[i].i01 * g.channels,
                          image + s[i].i10 * g.channels, image + s[i].i11 * g.channels, gb.per_class, d);
            sx += d[3] * s[i].dy + d[2] * (T(1) - s[i].dy) - d[1] * s[i].dy - d[0] * (T(1) - s[i].dy);
            sy += d[3] * s[i].dx + d[1] * (T(1) - s[i].dx) - d[2] * s[i].dx - d[0] * (T(1) - s[i].dx);
          }
          T scale_x, scale_y;
          deform_psroi_offset_scale(g, bin, scale_x, scale_y);
          const T inv = T(1) / static_cast<T>(gb.count[id]);
          grad_offset[bin.offset_x] += sx * inv * scale_x;
          grad_offset[bin.offset_x + part_area] += sy * inv * scale_y;
        }
      }
    }
  });
}

}  // namespace cpu
}  // namespace dcn_det
