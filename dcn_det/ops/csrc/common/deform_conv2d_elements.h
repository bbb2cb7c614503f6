// Per-element bodies of deformable convolution (DCNv1 / modulated DCNv2).
//
// Every function computes one element of one step of the algorithm and is
// __host__ __device__. The *Op structs at the end are the whole work of one
// thread, indexed by one flat index: the CUDA kernels (cuda/) run them one
// thread per index, the host device path (cpu/device_path.cpp) runs the very
// same structs in at::parallel_for loops, so the CPU test suite executes what a
// GPU executes. The production CPU kernel (cpu/deform_conv2d_kernel.cpp) is a
// channels-last algorithm of its own; it shares the sampling point and the
// bilinear weights with these.
//
// Layouts (all contiguous), for a chunk of `nb` images starting at image b0;
// K = kernel_h * kernel_w taps, P = out_h * out_w output pixels, G offset groups:
//   input   [nb, C, H, W]
//   offset  [nb, 2*G*K, out_h, out_w]; channel 2*(g*K + k) is dy, +1 is dx
//   mask    [nb, G*K, out_h, out_w]
//   samples [nb, G, K, P, 4] corner indices and mask-weighted bilinear weights;
//           sample id s = ((b*G + g)*K + k)*P + p, which is also the mask index
//   columns [C*K, nb*P], row c*K + k, column b*P + p
#pragma once

#include <cstdint>

#include "atomic_add.h"
#include "bilinear.h"
#include "macros.h"

namespace dcn_det {

struct DeformConv2dGeometry {
  int64_t channels, height, width;  // of the input
  int64_t kernel_h, kernel_w;
  int64_t stride_h, stride_w;
  int64_t pad_h, pad_w;
  int64_t dilation_h, dilation_w;
  int64_t out_h, out_w;
  int64_t offset_groups;
  bool use_mask;
  int64_t border;  // SampleBorder of common/bilinear.h: kBorderDcnv2 or kBorderDcnv1

  DCN_INLINE int64_t taps() const { return kernel_h * kernel_w; }
  DCN_INLINE int64_t out_pixels() const { return out_h * out_w; }
  DCN_INLINE int64_t plane() const { return height * width; }
  DCN_INLINE int64_t channels_per_offset_group() const { return channels / offset_groups; }
  DCN_INLINE int64_t samples_per_image() const { return offset_groups * taps() * out_pixels(); }
};

// Where tap k of output pixel p of image b samples the input:
//   p = p0 * stride - padding + k * dilation + (dy, dx).
template <typename T>
DCN_INLINE void deform_conv2d_sampling_point(const DeformConv2dGeometry& g, const T* offset,
                                             int64_t b, int64_t group, int64_t k, int64_t p,
                                             T& y, T& x) {
  const int64_t K = g.taps();
  const int64_t P = g.out_pixels();
  const int64_t ho = p / g.out_w;
  const int64_t wo = p - ho * g.out_w;
  const int64_t ki = k / g.kernel_w;
  const int64_t kj = k - ki * g.kernel_w;
  const T* off = offset + (b * 2 * g.offset_groups * K + 2 * (group * K + k)) * P + p;
  y = static_cast<T>(ho * g.stride_h - g.pad_h + ki * g.dilation_h) + off[0];
  x = static_cast<T>(wo * g.stride_w - g.pad_w + kj * g.dilation_w) + off[P];
}

// Sample s = ((b*G + group)*K + k)*P + p, unravelled.
struct DeformConv2dSampleIndex {
  int64_t b, group, k, p;
};

DCN_INLINE DeformConv2dSampleIndex deform_conv2d_unravel(const DeformConv2dGeometry& g, int64_t s) {
  const int64_t P = g.out_pixels();
  const int64_t K = g.taps();
  return {s / (P * K * g.offset_groups), (s / (P * K)) % g.offset_groups, (s / P) % K, s % P};
}

// Bilinear corners of sample s.
template <typename T>
DCN_INLINE DeformConv2dSampleIndex deform_conv2d_bilinear_at(const DeformConv2dGeometry& g, const T* offset,
                                                             int64_t s, BilinearSample<T>& bs) {
  const DeformConv2dSampleIndex i = deform_conv2d_unravel(g, s);
  T y, x;
  deform_conv2d_sampling_point(g, offset, i.b, i.group, i.k, i.p, y, x);
  bilinear_zero_padded(g.height, g.width, y, x, g.border, bs);
  return i;
}

template <typename T>
DCN_INLINE T deform_conv2d_mask_value(const DeformConv2dGeometry& g, const T* mask, int64_t s) {
  return g.use_mask ? mask[s] : T(1);
}

// Step 1: corners and (mask-weighted) weights of sample s, shared by every
// channel of its offset group.
template <typename T>
DCN_INLINE void deform_conv2d_fill_sample(const DeformConv2dGeometry& g, const T* offset,
                                          const T* mask, int64_t s, int64_t* sample_index,
                                          T* sample_weight) {
  BilinearSample<T> bs;
  deform_conv2d_bilinear_at(g, offset, s, bs);
  const T m = deform_conv2d_mask_value(g, mask, s);
DCN_UNROLL
  for (int j = 0; j < 4; ++j) {
    sample_index[4 * s + j] = bs.index[j];
    sample_weight[4 * s + j] = bs.weight[j] * m;
  }
}

// Index of sample (b, group of channel c, k, p).
DCN_INLINE int64_t deform_conv2d_sample_id(const DeformConv2dGeometry& g, int64_t c, int64_t k,
                                           int64_t b, int64_t p) {
  const int64_t group = c / g.channels_per_offset_group();
  return ((b * g.offset_groups + group) * g.taps() + k) * g.out_pixels() + p;
}

// Step 2 (forward): columns[c*K + k, b*P + p] = modulated bilinear sample.
template <typename T>
DCN_INLINE T deform_conv2d_column_value(const DeformConv2dGeometry& g, const T* input,
                                        const int64_t* sample_index, const T* sample_weight,
                                        int64_t c, int64_t k, int64_t b, int64_t p) {
  const int64_t s = deform_conv2d_sample_id(g, c, k, b, p);
  const T* plane = input + (b * g.channels + c) * g.plane();
  T v = T(0);
DCN_UNROLL
  for (int j = 0; j < 4; ++j) {
    v += sample_weight[4 * s + j] * plane[sample_index[4 * s + j]];
  }
  return v;
}

// Step 3 (backward, input): scatter grad_columns[c*K + k, b*P + p] back to the
// 4 corners. `add(ptr, value)` is AtomicAdd or, where the calling thread owns
// the plane, OwnedAdd (common/atomic_add.h).
template <typename T, typename AddFn>
DCN_INLINE void deform_conv2d_scatter_column(const DeformConv2dGeometry& g, T grad_col_value,
                                             const int64_t* sample_index,
                                             const T* sample_weight, int64_t c, int64_t k,
                                             int64_t b, int64_t p, T* grad_input, AddFn add) {
  const int64_t s = deform_conv2d_sample_id(g, c, k, b, p);
  T* plane = grad_input + (b * g.channels + c) * g.plane();
DCN_UNROLL
  for (int j = 0; j < 4; ++j) {
    add(plane + sample_index[4 * s + j], sample_weight[4 * s + j] * grad_col_value);
  }
}

// Step 4 (backward, offset and mask): for sample s, sum over the channels of its
// offset group of grad_columns times d(sample)/d(dy, dx, mask).
template <typename T>
DCN_INLINE void deform_conv2d_coordinate_grad(const DeformConv2dGeometry& g, const T* input,
                                              const T* offset, const T* mask,
                                              const T* grad_columns, int64_t nb, int64_t s,
                                              T* grad_offset, T* grad_mask) {
  const int64_t P = g.out_pixels();
  const int64_t K = g.taps();
  BilinearSample<T> bs;
  const DeformConv2dSampleIndex i = deform_conv2d_bilinear_at(g, offset, s, bs);
  const int64_t b = i.b, group = i.group, k = i.k, p = i.p;

  const int64_t cpg = g.channels_per_offset_group();
  const int64_t row_stride = nb * P;
  T grad_y = T(0), grad_x = T(0), grad_m = T(0);
  for (int64_t c = group * cpg; c < (group + 1) * cpg; ++c) {
    const T gc = grad_columns[(c * K + k) * row_stride + b * P + p];
    const T* plane = input + (b * g.channels + c) * g.plane();
    T v = T(0), vy = T(0), vx = T(0);
DCN_UNROLL
    for (int j = 0; j < 4; ++j) {
      const T corner = plane[bs.index[j]];
      v += bs.weight[j] * corner;
      vy += bs.dweight_dy[j] * corner;
      vx += bs.dweight_dx[j] * corner;
    }
    grad_m += gc * v;
    grad_y += gc * vy;
    grad_x += gc * vx;
  }
  const T m = deform_conv2d_mask_value(g, mask, s);
  T* go = grad_offset + (b * 2 * g.offset_groups * K + 2 * (group * K + k)) * P + p;
  go[0] = grad_y * m;
  go[P] = grad_x * m;
  if (g.use_mask) {
    grad_mask[s] = grad_m;
  }
}

// ---------------------------------------------------------------------------
// One thread's work, by flat index. Pointers are advanced to the chunk's first
// image; `nb` images per chunk. Each struct is trivially copyable (passed by value
// to a __global__ kernel).

// Step 1, index s over nb * G * K * P samples.
template <typename T>
struct DeformConv2dFillSamplesOp {
  DeformConv2dGeometry g;
  const T* offset;
  const T* mask;
  int64_t* sample_index;
  T* sample_weight;
  DCN_INLINE void operator()(int64_t s) const {
    deform_conv2d_fill_sample(g, offset, mask, s, sample_index, sample_weight);
  }
};

// Position of flat index e in the columns [C*K, nb*P]: row c*K + k, column b*P + p.
struct DeformConv2dColumnIndex {
  int64_t c, k, b, p;
};

DCN_INLINE DeformConv2dColumnIndex deform_conv2d_column_index(const DeformConv2dGeometry& g, int64_t nb,
                                                              int64_t e) {
  const int64_t P = g.out_pixels();
  const int64_t K = g.taps();
  const int64_t row = e / (nb * P);
  const int64_t rest = e - row * nb * P;
  const int64_t b = rest / P;
  return {row / K, row % K, b, rest - b * P};
}

// Step 2, index e over the C*K*nb*P column elements.
template <typename T>
struct DeformConv2dIm2colOp {
  DeformConv2dGeometry g;
  const T* input;
  const int64_t* sample_index;
  const T* sample_weight;
  int64_t nb;
  T* columns;
  DCN_INLINE void operator()(int64_t e) const {
    const DeformConv2dColumnIndex i = deform_conv2d_column_index(g, nb, e);
    columns[e] = deform_conv2d_column_value(g, input, sample_index, sample_weight, i.c, i.k, i.b, i.p);
  }
};

// Step 3. OwnerPerPlane false: index e over the column elements, concurrent
// writers, so atomic adds. True (deterministic): index bc over the nb*C (image,
// channel) planes; the thread owns its plane and scatters its K*P columns in a
// fixed order.
template <typename T, bool OwnerPerPlane>
struct DeformConv2dCol2imOp {
  DeformConv2dGeometry g;
  const T* grad_columns;
  const int64_t* sample_index;
  const T* sample_weight;
  int64_t nb;
  T* grad_input;
  DCN_INLINE void operator()(int64_t index) const {
    if constexpr (OwnerPerPlane) {
      const int64_t K = g.taps();
      const int64_t P = g.out_pixels();
      const int64_t b = index / g.channels;
      const int64_t c = index - b * g.channels;
      for (int64_t k = 0; k < K; ++k) {
        const T* gc = grad_columns + (c * K + k) * nb * P + b * P;
        for (int64_t p = 0; p < P; ++p) {
          deform_conv2d_scatter_column(g, gc[p], sample_index, sample_weight, c, k, b, p, grad_input, OwnedAdd());
        }
      }
    } else {
      const DeformConv2dColumnIndex i = deform_conv2d_column_index(g, nb, index);
      deform_conv2d_scatter_column(g, grad_columns[index], sample_index, sample_weight, i.c, i.k, i.b, i.p,
                                   grad_input, AtomicAdd());
    }
  }
};

// Step 4, index s over the samples; each thread writes its own sample's gradients.
template <typename T>
struct DeformConv2dCoordinateGradOp {
  DeformConv2dGeometry g;
  const T* input;
  const T* offset;
  const T* mask;
  const T* grad_columns;
  int64_t nb;
  T* grad_offset;
  T* grad_mask;
  DCN_INLINE void operator()(int64_t s) const {
    deform_conv2d_coordinate_grad(g, input, offset, mask, grad_columns, nb, s, grad_offset, grad_mask);
  }
};

}  // namespace dcn_det
