// The channels-last layout of the CPU deformable convolution: its geometry and
// bilinear corners (the three sampling loops over it are in deform_conv2d_loops.h;
// see cpu/deform_conv2d_kernel.cpp for the algorithm around them).
//
// Why channels-last: one bilinear sample is shared by all channels of its offset
// group, so with channels innermost its 4 corners are 4 contiguous runs of
// channels and the work per sample becomes 4 vectorised multiply-adds over those
// runs: no per-channel index arithmetic, no per-channel reload of the sample.
//
// Buffers, for a chunk of nb images (K taps, P output pixels, G offset groups):
//   padded input  [nb, H+2, W+2, C]      the image with a zero border of one pixel
//   columns       [nb*P, groups, K, C/groups]   one row per output pixel
//   corners       [nb, P, G, K]          PaddedCorners of every sample (backward)
// The zero border makes every corner of a point inside [-1, H) x [-1, W) a valid
// address, so the loops need no per-corner bounds checks: a corner outside the
// image reads 0 (and its gradient lands in the border, which is cropped away),
// exactly the zero-padded bilinear rule of common/bilinear.h.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "../common/deform_conv2d_elements.h"

namespace dcn_det {
namespace cpu {

struct ChannelsLastGeometry {
  DeformConv2dGeometry g;
  int64_t groups;  // weight groups

  int64_t channels_per_group() const { return g.channels / groups; }
  int64_t row_length() const { return g.taps() * g.channels; }
  int64_t padded_width() const { return g.width + 2; }
  int64_t padded_image() const { return (g.height + 2) * padded_width() * g.channels; }
  // Channel runs on which both the weight group and the offset group are constant:
  // both group sizes divide C, so runs of their gcd never straddle a boundary.
  int64_t run_length() const { return std::gcd(channels_per_group(), g.channels_per_offset_group()); }
  // Column of (channel c, tap k) inside a row; consecutive c of a run are consecutive.
  int64_t column(int64_t c, int64_t k) const {
    const int64_t cg = channels_per_group();
    return (c / cg) * g.taps() * cg + k * cg + c % cg;
  }
  // Element offsets of the 4 corners from the top-left one.
  void corner_offsets(int64_t out[4]) const {
    const int64_t row = padded_width() * g.channels;
    out[0] = 0;
    out[1] = g.channels;
    out[2] = row;
    out[3] = row + g.channels;
  }
};

// One sample: where its top-left corner is in the padded image (-1: the point
// samples 0, being outside [-1, H) x [-1, W), or under the DCNv1 rule outside
// [0, H) x [0, W)) and its mask-weighted bilinear weights.
template <typename T>
struct PaddedCorners {
  int64_t base;
  T weight[4];
};

// Bilinear weights of point (y, x) and their derivatives under the geometry's border
// rule (common/bilinear.h's bilinear_cell: formulas and corner order). Returns the
// top-left corner's element offset in the padded image, or -1 when the point samples
// nothing (NaN included).
template <typename T>
inline int64_t padded_bilinear(const ChannelsLastGeometry& cl, T y, T x, T weight[4], T dweight_dy[4],
                               T dweight_dx[4]) {
  const DeformConv2dGeometry& g = cl.g;
  int64_t y0, x0;
  if (!bilinear_cell(g.height, g.width, y, x, g.border, y0, x0, weight, dweight_dy, dweight_dx)) {
    return -1;
  }
  // y0 in [-1, H-1] -> padded row in [0, H]; the +1 row/column below stays inside (a
  // corner outside the map reads the zero border; under DCNv1 its weight is also 0).
  return ((y0 + 1) * cl.padded_width() + x0 + 1) * g.channels;
}

}  // namespace cpu
}  // namespace dcn_det
