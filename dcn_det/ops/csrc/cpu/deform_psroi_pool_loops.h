// The three loops of the channels-last deformable RoI pooling with group_size 1
// (forward, input gradient, offset gradient) over the samples gathered by
// deform_psroi_pool_channels_last.h. Compiled once per instruction set (cpu/isa/):
// include only after the baseline headers and inside that file's target pragma.
#pragma once

#include "deform_psroi_pool_channels_last.h"
#include "vector_loops.h"

namespace dcn_det {
namespace cpu {
namespace DCN_CPU_ISA {

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

}  // namespace DCN_CPU_ISA
}  // namespace cpu
}  // namespace dcn_det
