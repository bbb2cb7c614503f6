// Per-bin bodies of (integer-bin, non-deformable) position-sensitive RoI pooling,
// the operator of the original R-FCN: MXNet 1.9.1 contrib.PSROIPooling
// (docs/semantics.md, "Integer-bin PS-RoI pooling"). __host__ __device__: the CPU
// kernel (cpu/psroi_pool_kernel.cpp), the CUDA kernel (cuda/psroi_pool_kernel.cu)
// and the host device path (cpu/device_path.h) all run the *Op structs at the end.
//
// Layouts (contiguous): input [N, output_dim*group_size^2, H, W]; rois [R, 5] =
// (batch_index, x1, y1, x2, y2) in image coordinates; output
// [R, output_dim, pooled_size, pooled_size].
//
// A bin is a rectangle of whole pixels [hstart, hend) x [wstart, wend) and its value
// the mean of the input over it. The bounds are computed in T with the expressions
// and rounding order of the original, so float32 bins are the original's bins.
#pragma once

#include <cmath>
#include <cstdint>

#include "atomic_add.h"
#include "deform_psroi_pool_elements.h"  // psroi_min, psroi_max
#include "macros.h"

namespace dcn_det {

struct PSRoIPoolGeometry {
  int64_t batch, channels, height, width;  // of the input
  int64_t output_dim, group_size, pooled_size;
  double spatial_scale;

  DCN_INLINE int64_t bins() const { return pooled_size * pooled_size; }
};

// Products and sums rounded one at a time: nvcc would otherwise contract a * b + c
// into one fused multiply-add (rounded once), which moves a bin bound that lies on
// an integer by one pixel now and then. The host compilers of this project build
// these files without FMA, so plain operators round each step there.
DCN_INLINE float psroi_mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
DCN_INLINE double psroi_mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
DCN_INLINE float psroi_add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
DCN_INLINE double psroi_add_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

// One output bin: the input plane it reads and its pixel rectangle.
struct PSRoIPoolBin {
  int64_t batch;           // image index; -1 when the RoI's batch index is out of range
  int64_t channel;         // position-sensitive input channel
  int64_t hstart, hend;    // rows [hstart, hend), within [0, H]
  int64_t wstart, wend;    // columns [wstart, wend), within [0, W]

  DCN_INLINE bool empty() const { return batch < 0 || hend <= hstart || wend <= wstart; }
  DCN_INLINE int64_t area() const { return (hend - hstart) * (wend - wstart); }
};

// The image a RoI reads: its batch index truncated, as the original's int conversion,
// or -1 when it is outside [0, N) (NaN included): such a RoI pools zeros.
template <typename T>
DCN_INLINE int64_t psroi_pool_batch_of(const PSRoIPoolGeometry& g, const T* roi) {
  const T b = roi[0];
  return (b >= T(0) && b < static_cast<T>(g.batch)) ? static_cast<int64_t>(b) : -1;
}

// Group cell of bin row (or column) p: floor(p * group_size / pooled_size) in exact
// integer arithmetic, clamped to [0, group_size - 1].
DCN_INLINE int64_t psroi_pool_group_of(const PSRoIPoolGeometry& g, int64_t p) {
  return psroi_min<int64_t>(psroi_max<int64_t>((p * g.group_size) / g.pooled_size, 0), g.group_size - 1);
}

// A floor()ed or ceil()ed bound clamped to [0, size] before it becomes an integer, so
// that any value converts safely (NaN -> 0, +-inf -> the ends). For finite bounds this is
// the original's convert-then-clamp.
template <typename T>
DCN_INLINE int64_t psroi_pool_clamp_bound(T v, int64_t size) {
  return static_cast<int64_t>(psroi_min(psroi_max(v, T(0)), static_cast<T>(size)));
}

template <typename T>
DCN_INLINE PSRoIPoolBin psroi_pool_bin(const PSRoIPoolGeometry& g, const T* rois, int64_t r, int64_t ctop,
                                       int64_t ph, int64_t pw) {
  PSRoIPoolBin bin;
  const T* roi = rois + r * 5;
  bin.batch = psroi_pool_batch_of(g, roi);
  const T scale = static_cast<T>(g.spatial_scale);
  // Corners rounded to whole pixels (C round: halves away from zero); the end corner is
  // inclusive (+1). No -0.5 here: bins are whole pixels, not sample points.
  const T start_w = psroi_mul_rn(static_cast<T>(round(roi[1])), scale);
  const T start_h = psroi_mul_rn(static_cast<T>(round(roi[2])), scale);
  const T end_w = psroi_mul_rn(static_cast<T>(round(roi[3])) + T(1), scale);
  const T end_h = psroi_mul_rn(static_cast<T>(round(roi[4])) + T(1), scale);
  const T roi_w = psroi_max(psroi_add_rn(end_w, -start_w), T(0.1));  // degenerate RoIs: 0.1 wide
  const T roi_h = psroi_max(psroi_add_rn(end_h, -start_h), T(0.1));
  const T bin_w = roi_w / static_cast<T>(g.pooled_size);
  const T bin_h = roi_h / static_cast<T>(g.pooled_size);

  bin.hstart = psroi_pool_clamp_bound(floor(psroi_add_rn(psroi_mul_rn(static_cast<T>(ph), bin_h), start_h)), g.height);
  bin.wstart = psroi_pool_clamp_bound(floor(psroi_add_rn(psroi_mul_rn(static_cast<T>(pw), bin_w), start_w)), g.width);
  bin.hend = psroi_pool_clamp_bound(ceil(psroi_add_rn(psroi_mul_rn(static_cast<T>(ph + 1), bin_h), start_h)), g.height);
  bin.wend = psroi_pool_clamp_bound(ceil(psroi_add_rn(psroi_mul_rn(static_cast<T>(pw + 1), bin_w), start_w)), g.width);

  bin.channel = (ctop * g.group_size + psroi_pool_group_of(g, ph)) * g.group_size + psroi_pool_group_of(g, pw);
  return bin;
}

// Forward: mean over the bin's pixels, rows outer and columns inner (the original's
// order of summation); 0 for an empty bin or an out-of-range batch index.
template <typename T>
DCN_INLINE T psroi_pool_bin_value(const PSRoIPoolGeometry& g, const T* input, const PSRoIPoolBin& bin) {
  if (bin.empty()) return T(0);
  const T* plane = input + (bin.batch * g.channels + bin.channel) * g.height * g.width;
  T sum = T(0);
  for (int64_t h = bin.hstart; h < bin.hend; ++h) {
    for (int64_t w = bin.wstart; w < bin.wend; ++w) sum += plane[h * g.width + w];
  }
  return sum / static_cast<T>(bin.area());
}

// Backward to the input: grad / area added to every pixel of the bin. add(ptr, v) is
// AtomicAdd or, where the calling thread owns the plane, OwnedAdd (atomic_add.h).
template <typename T, typename AddFn>
DCN_INLINE void psroi_pool_bin_input_grad(const PSRoIPoolGeometry& g, const PSRoIPoolBin& bin, T grad,
                                          T* grad_input, AddFn add) {
  if (bin.empty()) return;
  const T diff = grad / static_cast<T>(bin.area());
  T* plane = grad_input + (bin.batch * g.channels + bin.channel) * g.height * g.width;
  for (int64_t h = bin.hstart; h < bin.hend; ++h) {
    for (int64_t w = bin.wstart; w < bin.wend; ++w) add(plane + h * g.width + w, diff);
  }
}

// ---------------------------------------------------------------------------
// One device thread's work, by flat index. Each struct is trivially copyable
// (passed by value to a __global__ kernel). Output element e is
// ((r * output_dim + ctop) * pooled_size + ph) * pooled_size + pw.

template <typename T>
DCN_INLINE PSRoIPoolBin psroi_pool_bin_of_output(const PSRoIPoolGeometry& g, const T* rois, int64_t e) {
  const int64_t pw = e % g.pooled_size;
  const int64_t ph = (e / g.pooled_size) % g.pooled_size;
  const int64_t ctop = (e / g.bins()) % g.output_dim;
  const int64_t r = e / (g.bins() * g.output_dim);
  return psroi_pool_bin(g, rois, r, ctop, ph, pw);
}

// Forward, index e over the R * output_dim * bins outputs.
template <typename T>
struct PSRoIPoolForwardOp {
  PSRoIPoolGeometry g;
  const T* input;
  const T* rois;
  T* output;
  DCN_INLINE void operator()(int64_t e) const {
    output[e] = psroi_pool_bin_value(g, input, psroi_pool_bin_of_output(g, rois, e));
  }
};

// Backward, index e over the outputs: atomic scatter to the input gradient.
template <typename T>
struct PSRoIPoolBackwardOp {
  PSRoIPoolGeometry g;
  const T* grad_output;
  const T* rois;
  T* grad_input;
  DCN_INLINE void operator()(int64_t e) const {
    psroi_pool_bin_input_grad(g, psroi_pool_bin_of_output(g, rois, e), grad_output[e], grad_input, AtomicAdd());
  }
};

// Atomic-free input gradient, index over the N * channels input planes: a plane
// (image b, channel c) is read only by output channel c / group_size^2 through the
// bins of its group cell, so its owner visits those bins of every RoI of image b, in
// the order RoI, bin row, bin column (the order of the original's serial CPU loop).
// Deterministic; the CPU kernel's backward and the device path under
// torch.use_deterministic_algorithms(True).
template <typename T>
struct PSRoIPoolInputGradOwnerOp {
  PSRoIPoolGeometry g;
  const T* grad_output;
  const T* rois;
  int64_t num_rois;
  T* grad_input;
  DCN_INLINE void operator()(int64_t owner) const {
    const int64_t b = owner / g.channels;
    const int64_t c = owner - b * g.channels;
    const int64_t cells = g.group_size * g.group_size;
    const int64_t ctop = c / cells;
    const int64_t gh = (c - ctop * cells) / g.group_size;
    const int64_t gw = c % g.group_size;
    for (int64_t r = 0; r < num_rois; ++r) {
      if (psroi_pool_batch_of(g, rois + r * 5) != b) continue;
      const T* go = grad_output + (r * g.output_dim + ctop) * g.bins();
      for (int64_t ph = 0; ph < g.pooled_size; ++ph) {
        if (psroi_pool_group_of(g, ph) != gh) continue;
        for (int64_t pw = 0; pw < g.pooled_size; ++pw) {
          if (psroi_pool_group_of(g, pw) != gw) continue;
          psroi_pool_bin_input_grad(g, psroi_pool_bin(g, rois, r, ctop, ph, pw), go[ph * g.pooled_size + pw],
                                    grad_input, OwnedAdd());
        }
      }
    }
  }
};

}  // namespace dcn_det
