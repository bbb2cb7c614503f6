// Bilinear interpolation on one H x W plane under one of two border rules
// (docs/semantics.md section 1), chosen by deform_conv2d's `border` argument:
//
// kBorderDcnv2 (default; DCNv2 / torchvision / MXNet ModulatedDeformableConvolution):
//  * a point with y < -1, y >= H, x < -1 or x >= W samples 0;
//  * otherwise each of the 4 surrounding corners contributes if it lies inside
//    the map, and counts as 0 if it does not. A point on y = -1 (or x = -1) also
//    samples 0, but keeps the slope towards the map: the derivative is the one of
//    the formula with fractions in [0, 1), as at every other integer coordinate
//    (and as torchvision's). Zero-initialised offsets with padding 1 put the first
//    row and column of taps exactly there, so every DCN layer starts on this point.
//   Because corners outside count as 0 (instead of clamping), the value keeps a
//   non-zero derivative w.r.t. the point up to one pixel beyond the border.
//
// kBorderDcnv1 (MXNet DeformableConvolution, the DCNv1 networks of the original
// authors): a point samples only if 0 <= y < H and 0 <= x < W, else 0; a point
// with floor(y) = H-1 is moved onto row H-1 (likewise columns), so in the last
// row the value is that row's linear interpolation and does not depend on y.
// All 4 corners used are then inside the map. The gradient is the exact one of
// this forward (d/dy = 0 in the last row, d/dx = 0 in the last column).
#pragma once

#include <cmath>
#include <cstdint>

#include "macros.h"

namespace dcn_det {

// The 4 corners of one sample: flat offsets into the plane and their weights.
// Corners outside the map get index 0 and all-zero weights, so a consumer can
// read/write plane[index[j]] unconditionally: there is no out-of-bounds access
// whatever the sampling point is (NaN and huge offsets included).
template <typename T>
struct BilinearSample {
  int64_t index[4];  // corners (y0,x0), (y0,x0+1), (y0+1,x0), (y0+1,x0+1)
  T weight[4];       // interpolation weights
  T dweight_dy[4];   // d weight / d y
  T dweight_dx[4];   // d weight / d x
};

// Weights of the 4 corners (order above) of a point at fractions (ly, lx) past its
// top-left corner, and their derivatives w.r.t. y and x.
template <typename T>
DCN_INLINE void bilinear_corner_weights(T ly, T lx, T weight[4], T dweight_dy[4], T dweight_dx[4]) {
  const T hy = T(1) - ly;
  const T hx = T(1) - lx;
  weight[0] = hy * hx, weight[1] = hy * lx, weight[2] = ly * hx, weight[3] = ly * lx;
  dweight_dy[0] = -hx, dweight_dy[1] = -lx, dweight_dy[2] = hx, dweight_dy[3] = lx;
  dweight_dx[0] = -hy, dweight_dx[1] = hy, dweight_dx[2] = -ly, dweight_dx[3] = ly;
}

// The two border rules (the values of deform_conv2d's `border` argument).
enum SampleBorder : int64_t { kBorderDcnv2 = 0, kBorderDcnv1 = 1 };

// Whether point (y, x) has a corner that can contribute (value or slope): under DCNv2,
// y in [-1, H) and x in [-1, W); under DCNv1, y in [0, H) and x in [0, W). Written as a
// conjunction so that NaN coordinates fail it; within it, floor(y) is in [-1, H-1], so
// converting it to an integer cannot overflow.
template <typename T>
DCN_INLINE bool bilinear_reaches_map(int64_t height, int64_t width, T y, T x, int64_t border) {
  const T low = border == kBorderDcnv1 ? T(0) : T(-1);
  return y >= low && y < T(height) && x >= low && x < T(width);
}

// Top-left corner (y0, x0) of the cell point (y, x) interpolates in, and the weights of
// its 4 corners (order of BilinearSample) with their derivatives, under `border`.
// Returns false, leaving the outputs unset, when the point samples nothing. Corners
// outside the map (DCNv2 only) get their formula weights: callers zero or pad them.
template <typename T>
DCN_INLINE bool bilinear_cell(int64_t height, int64_t width, T y, T x, int64_t border,
                              int64_t& y0, int64_t& x0, T weight[4], T dweight_dy[4],
                              T dweight_dx[4]) {
  if (!bilinear_reaches_map(height, width, y, x, border)) {
    return false;
  }
  T y_floor = floor(y);
  T x_floor = floor(x);
  T ly = y - y_floor;  // fractions in [0, 1)
  T lx = x - x_floor;
  // DCNv1: in the last row (column) the point is moved onto it, so ly (lx) is 0 and the
  // value no longer depends on y (x).
  const bool snap_y = border == kBorderDcnv1 && y_floor >= T(height - 1);
  const bool snap_x = border == kBorderDcnv1 && x_floor >= T(width - 1);
  if (snap_y) ly = T(0);
  if (snap_x) lx = T(0);
  bilinear_corner_weights(ly, lx, weight, dweight_dy, dweight_dx);
DCN_UNROLL
  for (int j = 0; j < 4; ++j) {
    if (snap_y) dweight_dy[j] = T(0);
    if (snap_x) dweight_dx[j] = T(0);
  }
  y0 = static_cast<int64_t>(y_floor);
  x0 = static_cast<int64_t>(x_floor);
  return true;
}

template <typename T>
DCN_INLINE void bilinear_zero_padded(int64_t height, int64_t width, T y, T x, int64_t border,
                                     BilinearSample<T>& s) {
DCN_UNROLL
  for (int j = 0; j < 4; ++j) {
    s.index[j] = 0;
    s.weight[j] = T(0);
    s.dweight_dy[j] = T(0);
    s.dweight_dx[j] = T(0);
  }
  int64_t y0, x0;
  T weight[4], dy[4], dx[4];
  if (!bilinear_cell(height, width, y, x, border, y0, x0, weight, dy, dx)) {
    return;
  }
  // Under DCNv1 in the last row, row y0 + 1 = H is outside and its weights are 0.
  const bool top = y0 >= 0;
  const bool bottom = y0 + 1 <= height - 1;
  const bool left = x0 >= 0;
  const bool right = x0 + 1 <= width - 1;
  const bool inside[4] = {top && left, top && right, bottom && left, bottom && right};
  const int64_t index[4] = {y0 * width + x0, y0 * width + x0 + 1,
                            (y0 + 1) * width + x0, (y0 + 1) * width + x0 + 1};
DCN_UNROLL
  for (int j = 0; j < 4; ++j) {
    if (inside[j]) {
      s.index[j] = index[j];
      s.weight[j] = weight[j];
      s.dweight_dy[j] = dy[j];
      s.dweight_dx[j] = dx[j];
    }
  }
}

}  // namespace dcn_det
