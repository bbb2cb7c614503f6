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

}  // namespace cpu
}  // namespace dcn_det
