// Per-bin bodies of deformable position-sensitive RoI pooling, with the exact
// semantics of the original implementation (MXNet DeformablePSROIPooling,
// docs/semantics.md section 2). __host__ __device__. The production CPU kernel
// (cpu/deform_psroi_pool_kernel.cpp) calls the per-bin and per-sample functions
// from its own loops; the *Op structs at the end are the whole work of one device
// thread by flat index, run one GPU thread per index by cuda/ and in host loops by
// the host device path (cpu/device_path.cpp), so the CPU tests execute them too.
//
// Layouts (contiguous): input [N, output_dim*group_size^2, H, W]; rois [R, 5] =
// (batch_index, x1, y1, x2, y2); offset [R, 2*num_classes, part_size, part_size]
// with channel 2*class = dx, 2*class+1 = dy (normalised by the RoI size);
// output [R, output_dim, pooled_size, pooled_size].
#pragma once

#include <cmath>
#include <cstdint>

#include "atomic_add.h"
#include "macros.h"

namespace dcn_det {

struct DeformPSRoIPoolGeometry {
  int64_t batch, channels, height, width;  // of the input
  int64_t output_dim, group_size, pooled_size, part_size, sample_per_part;
  int64_t num_classes, channels_each_class;  // offset classes; output channels per class
  double spatial_scale, trans_std;
  bool no_trans;

  DCN_INLINE int64_t bins() const { return pooled_size * pooled_size; }
};

// One output bin: where its samples lie and which input channel they read.
template <typename T>
struct PSRoIBin {
  int64_t batch;     // image index; -1 when the RoI's index is out of range
  int64_t channel;   // position-sensitive input channel
  T hstart, wstart;  // first sample point (already moved by the offset)
  T sub_h, sub_w;    // distance between samples
  T roi_h, roi_w;    // RoI size, which scales the offsets
  int64_t offset_x;  // flat index of this bin's dx in offset (dy is + part_size^2); -1 if no_trans
};

template <typename T>
DCN_INLINE T psroi_min(T a, T b) { return a < b ? a : b; }
template <typename T>
DCN_INLINE T psroi_max(T a, T b) { return a > b ? a : b; }

template <typename T>
DCN_INLINE PSRoIBin<T> deform_psroi_bin(const DeformPSRoIPoolGeometry& g, const T* rois,
                                        const T* offset, int64_t r, int64_t ctop, int64_t ph,
                                        int64_t pw) {
  PSRoIBin<T> bin;
  const T* roi = rois + r * 5;
  const T scale = static_cast<T>(g.spatial_scale);
  // Corners are rounded to whole pixels (C round: halves away from zero), the end
  // corner is inclusive (+1), and -0.5 moves from pixel indices to pixel centres.
  const T start_w = round(roi[1]) * scale - T(0.5);
  const T start_h = round(roi[2]) * scale - T(0.5);
  const T end_w = (round(roi[3]) + T(1)) * scale - T(0.5);
  const T end_h = (round(roi[4]) + T(1)) * scale - T(0.5);
  bin.roi_w = psroi_max(end_w - start_w, T(0.1));  // degenerate RoIs become 0.1 wide
  bin.roi_h = psroi_max(end_h - start_h, T(0.1));
  const T bin_w = bin.roi_w / static_cast<T>(g.pooled_size);
  const T bin_h = bin.roi_h / static_cast<T>(g.pooled_size);
  bin.sub_w = bin_w / static_cast<T>(g.sample_per_part);
  bin.sub_h = bin_h / static_cast<T>(g.sample_per_part);

  const T batch = roi[0];
  bin.batch = (batch >= T(0) && batch < T(g.batch)) ? static_cast<int64_t>(batch) : -1;

  // floor(ph / pooled_size * part_size) and floor(ph * group_size / pooled_size),
  // in exact integer arithmetic.
  const int64_t part_h = (ph * g.part_size) / g.pooled_size;
  const int64_t part_w = (pw * g.part_size) / g.pooled_size;
  const int64_t gh = psroi_min<int64_t>(psroi_max<int64_t>((ph * g.group_size) / g.pooled_size, 0), g.group_size - 1);
  const int64_t gw = psroi_min<int64_t>(psroi_max<int64_t>((pw * g.group_size) / g.pooled_size, 0), g.group_size - 1);
  bin.channel = (ctop * g.group_size + gh) * g.group_size + gw;

  T trans_x = T(0), trans_y = T(0);
  bin.offset_x = -1;
  if (!g.no_trans) {
    const int64_t cls = ctop / g.channels_each_class;
    const int64_t part_area = g.part_size * g.part_size;
    bin.offset_x = ((r * g.num_classes + cls) * 2) * part_area + part_h * g.part_size + part_w;
    trans_x = offset[bin.offset_x] * static_cast<T>(g.trans_std);
    trans_y = offset[bin.offset_x + part_area] * static_cast<T>(g.trans_std);
  }
  bin.wstart = static_cast<T>(pw) * bin_w + start_w + trans_x * bin.roi_w;
  bin.hstart = static_cast<T>(ph) * bin_h + start_h + trans_y * bin.roi_h;
  return bin;
}

// Corners of one sample clamped into the map; x1 = ceil(x) as in the original, so
// the four indices are always inside the plane.
template <typename T>
struct PSRoISample {
  int64_t i00, i01, i10, i11;  // (y0,x0), (y1,x0), (y0,x1), (y1,x1)
  T dx, dy;                    // x - x0, y - y0
};

// Calls f(sample) for every sample of the bin that is not skipped and returns how
// many there were. Samples outside [-0.5, W-0.5] x [-0.5, H-0.5] are skipped (NaN
// too); the others are clamped to [0, W-1] x [0, H-1].
template <typename T, typename F>
DCN_INLINE int64_t deform_psroi_for_each_sample(const DeformPSRoIPoolGeometry& g,
                                                const PSRoIBin<T>& bin, F f) {
  if (bin.batch < 0) return 0;
  const T H = static_cast<T>(g.height);
  const T W = static_cast<T>(g.width);
  int64_t count = 0;
  for (int64_t ih = 0; ih < g.sample_per_part; ++ih) {
    for (int64_t iw = 0; iw < g.sample_per_part; ++iw) {
      T w = bin.wstart + static_cast<T>(iw) * bin.sub_w;
      T h = bin.hstart + static_cast<T>(ih) * bin.sub_h;
      if (!(w >= T(-0.5) && w <= W - T(0.5) && h >= T(-0.5) && h <= H - T(0.5))) continue;
      w = psroi_min(psroi_max(w, T(0)), W - T(1));
      h = psroi_min(psroi_max(h, T(0)), H - T(1));
      const int64_t x0 = static_cast<int64_t>(floor(w)), x1 = static_cast<int64_t>(ceil(w));
      const int64_t y0 = static_cast<int64_t>(floor(h)), y1 = static_cast<int64_t>(ceil(h));
      PSRoISample<T> s;
      s.i00 = y0 * g.width + x0;
      s.i01 = y1 * g.width + x0;
      s.i10 = y0 * g.width + x1;
      s.i11 = y1 * g.width + x1;
      s.dx = w - static_cast<T>(x0);
      s.dy = h - static_cast<T>(y0);
      f(s);
      ++count;
    }
  }
  return count;
}

template <typename T>
DCN_INLINE const T* deform_psroi_plane(const DeformPSRoIPoolGeometry& g, const T* input,
                                       const PSRoIBin<T>& bin) {
  return input + (bin.batch * g.channels + bin.channel) * g.height * g.width;
}

// Bilinear value of one sample, its scatter to the corners, and its slopes
// d/dx, d/dy (computed with x1 = ceil(x), as the original: 0 at integer points).
// Bilinear weights of the corners i00, i01, i10, i11.
template <typename T>
DCN_INLINE void deform_psroi_sample_weights(const PSRoISample<T>& s, T w[4]) {
  w[0] = (T(1) - s.dx) * (T(1) - s.dy);
  w[1] = (T(1) - s.dx) * s.dy;
  w[2] = s.dx * (T(1) - s.dy);
  w[3] = s.dx * s.dy;
}

template <typename T>
DCN_INLINE T deform_psroi_sample_value(const T* plane, const PSRoISample<T>& s) {
  T w[4];
  deform_psroi_sample_weights(s, w);
  return w[0] * plane[s.i00] + w[1] * plane[s.i01] + w[2] * plane[s.i10] + w[3] * plane[s.i11];
}

template <typename T, typename AddFn>
DCN_INLINE void deform_psroi_sample_scatter(T* plane_grad, const PSRoISample<T>& s, T diff, AddFn add) {
  T w[4];
  deform_psroi_sample_weights(s, w);
  add(plane_grad + s.i00, w[0] * diff);
  add(plane_grad + s.i01, w[1] * diff);
  add(plane_grad + s.i10, w[2] * diff);
  add(plane_grad + s.i11, w[3] * diff);
}

template <typename T>
DCN_INLINE void deform_psroi_sample_slopes(const T* plane, const PSRoISample<T>& s, T& slope_x, T& slope_y) {
  const T u00 = plane[s.i00], u01 = plane[s.i01], u10 = plane[s.i10], u11 = plane[s.i11];
  slope_x = u11 * s.dy + u10 * (T(1) - s.dy) - u01 * s.dy - u00 * (T(1) - s.dy);
  slope_y = u11 * s.dx + u01 * (T(1) - s.dx) - u10 * s.dx - u00 * (T(1) - s.dx);
}

// d(offset dx, dy) per unit of (sum of slopes x diff): trans_std times the RoI size.
template <typename T>
DCN_INLINE void deform_psroi_offset_scale(const DeformPSRoIPoolGeometry& g, const PSRoIBin<T>& bin,
                                          T& scale_x, T& scale_y) {
  scale_x = static_cast<T>(g.trans_std) * bin.roi_w;
  scale_y = static_cast<T>(g.trans_std) * bin.roi_h;
}

// Input channel of output channel ctop for a bin computed for output channel ctop0 of
// the same class (channels of one class share every sample position).
template <typename T>
DCN_INLINE int64_t deform_psroi_channel_of(const DeformPSRoIPoolGeometry& g, const PSRoIBin<T>& bin,
                                           int64_t ctop0, int64_t ctop) {
  return bin.channel + (ctop - ctop0) * g.group_size * g.group_size;
}

// Forward: mean of the bilinear samples of the bin (0 when every sample is skipped).
template <typename T>
DCN_INLINE T deform_psroi_bin_value(const DeformPSRoIPoolGeometry& g, const T* input,
                                    const PSRoIBin<T>& bin) {
  if (bin.batch < 0) return T(0);
  const T* plane = deform_psroi_plane(g, input, bin);
  T sum = T(0);
  const int64_t count = deform_psroi_for_each_sample(
      g, bin, [&](const PSRoISample<T>& s) { sum += deform_psroi_sample_value(plane, s); });
  return count == 0 ? T(0) : sum / static_cast<T>(count);
}

template <typename T>
DCN_INLINE int64_t deform_psroi_bin_count(const DeformPSRoIPoolGeometry& g, const PSRoIBin<T>& bin) {
  return deform_psroi_for_each_sample(g, bin, [](const PSRoISample<T>&) {});
}

// Backward to the input: ``diff`` (the bin's gradient divided by its sample count,
// see deform_psroi_bin_count) spread over the corners. add(ptr, v) is AtomicAdd or,
// where the calling thread owns the plane, OwnedAdd (common/atomic_add.h).
template <typename T, typename AddFn>
DCN_INLINE void deform_psroi_bin_input_grad(const DeformPSRoIPoolGeometry& g,
                                            const PSRoIBin<T>& bin, T diff, T* grad_input,
                                            AddFn add) {
  T* plane = grad_input + (bin.batch * g.channels + bin.channel) * g.height * g.width;
  deform_psroi_for_each_sample(
      g, bin, [&](const PSRoISample<T>& s) { deform_psroi_sample_scatter(plane, s, diff, add); });
}

// Backward to the offset, for ``diff`` as above: d(bin)/d(dx, dy) =
// d(bin)/d(sample point) * trans_std * roi size.
template <typename T>
DCN_INLINE void deform_psroi_bin_offset_grad(const DeformPSRoIPoolGeometry& g, const T* input,
                                             const PSRoIBin<T>& bin, T diff, T& grad_dx,
                                             T& grad_dy) {
  grad_dx = T(0);
  grad_dy = T(0);
  if (g.no_trans) return;
  const T* plane = deform_psroi_plane(g, input, bin);
  T sx = T(0), sy = T(0);
  deform_psroi_for_each_sample(g, bin, [&](const PSRoISample<T>& s) {
    T x, y;
    deform_psroi_sample_slopes(plane, s, x, y);
    sx += x;
    sy += y;
  });
  T scale_x, scale_y;
  deform_psroi_offset_scale(g, bin, scale_x, scale_y);
  grad_dx = sx * diff * scale_x;
  grad_dy = sy * diff * scale_y;
}

// ---------------------------------------------------------------------------
// One device thread's work, by flat index. Each struct is trivially copyable
// (passed by value to a __global__ kernel). Output element e is
// ((r * output_dim + ctop) * pooled_size + ph) * pooled_size + pw.

template <typename T>
DCN_INLINE PSRoIBin<T> deform_psroi_bin_of_output(const DeformPSRoIPoolGeometry& g, const T* rois,
                                                  const T* offset, int64_t e) {
  const int64_t bins = g.bins();
  const int64_t pw = e % g.pooled_size;
  const int64_t ph = (e / g.pooled_size) % g.pooled_size;
  const int64_t ctop = (e / bins) % g.output_dim;
  const int64_t r = e / (bins * g.output_dim);
  return deform_psroi_bin(g, rois, offset, r, ctop, ph, pw);
}

// Forward, index e over the R * output_dim * bins outputs.
template <typename T>
struct DeformPSRoIForwardOp {
  DeformPSRoIPoolGeometry g;
  const T* input;
  const T* rois;
  const T* offset;
  T* output;
  DCN_INLINE void operator()(int64_t e) const {
    output[e] = deform_psroi_bin_value(g, input, deform_psroi_bin_of_output(g, rois, offset, e));
  }
};

// Backward, index e over the outputs: atomic scatter to the input and offset gradients.
template <typename T>
struct DeformPSRoIBackwardOp {
  DeformPSRoIPoolGeometry g;
  const T* grad_output;
  const T* input;
  const T* rois;
  const T* offset;
  T* grad_input;
  T* grad_offset;
  DCN_INLINE void operator()(int64_t e) const {
    const PSRoIBin<T> bin = deform_psroi_bin_of_output(g, rois, offset, e);
    const int64_t count = deform_psroi_bin_count(g, bin);  // also 0 for an invalid batch index
    if (count == 0) return;
    const T diff = grad_output[e] / static_cast<T>(count);
    deform_psroi_bin_input_grad(g, bin, diff, grad_input, AtomicAdd());
    if (!g.no_trans) {
      T gx, gy;
      deform_psroi_bin_offset_grad(g, input, bin, diff, gx, gy);
      atomic_add(grad_offset + bin.offset_x, gx);
      atomic_add(grad_offset + bin.offset_x + g.part_size * g.part_size, gy);
    }
  }
};

// Deterministic input gradient, index over the N * output_dim (image, output
// channel) owners: the input channels an output channel reads (one per group
// cell) belong to it alone, and it visits every RoI and bin in a fixed order.
template <typename T>
struct DeformPSRoIInputGradOwnerOp {
  DeformPSRoIPoolGeometry g;
  const T* grad_output;
  const T* rois;
  const T* offset;
  int64_t num_rois;
  T* grad_input;
  DCN_INLINE void operator()(int64_t owner) const {
    const int64_t bins = g.bins();
    const int64_t b = owner / g.output_dim;
    const int64_t ctop = owner - b * g.output_dim;
    for (int64_t r = 0; r < num_rois; ++r) {
      for (int64_t bin_id = 0; bin_id < bins; ++bin_id) {
        const PSRoIBin<T> bin = deform_psroi_bin(g, rois, offset, r, ctop, bin_id / g.pooled_size, bin_id % g.pooled_size);
        if (bin.batch != b) continue;
        const int64_t count = deform_psroi_bin_count(g, bin);
        if (count == 0) continue;
        const T diff = grad_output[(r * g.output_dim + ctop) * bins + bin_id] / static_cast<T>(count);
        deform_psroi_bin_input_grad(g, bin, diff, grad_input, OwnedAdd());
      }
    }
  }
};

// Deterministic offset gradient, index over the R * num_classes (RoI, offset
// class) owners: the owner sums every bin and channel that shares its offsets.
template <typename T>
struct DeformPSRoIOffsetGradOwnerOp {
  DeformPSRoIPoolGeometry g;
  const T* grad_output;
  const T* input;
  const T* rois;
  const T* offset;
  T* grad_offset;
  DCN_INLINE void operator()(int64_t owner) const {
    const int64_t bins = g.bins();
    const int64_t part_area = g.part_size * g.part_size;
    const int64_t r = owner / g.num_classes;
    const int64_t cls = owner - r * g.num_classes;
    for (int64_t ctop = cls * g.channels_each_class; ctop < (cls + 1) * g.channels_each_class; ++ctop) {
      for (int64_t bin_id = 0; bin_id < bins; ++bin_id) {
        const PSRoIBin<T> bin = deform_psroi_bin(g, rois, offset, r, ctop, bin_id / g.pooled_size, bin_id % g.pooled_size);
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
};

}  // namespace dcn_det
