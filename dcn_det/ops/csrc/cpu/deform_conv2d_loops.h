// The three sampling loops of the CPU deformable convolution (im2col, coordinate
// gradient, col2im) over the channels-last buffers of deform_conv2d_channels_last.h.
// Compiled once per instruction set (cpu/isa/): include only after the baseline
// headers and inside that file's target pragma, with DCN_CPU_ISA naming the namespace.
#pragma once

#include "deform_conv2d_channels_last.h"
#include "vector_loops.h"

namespace dcn_det {
namespace cpu {
namespace DCN_CPU_ISA {

// Forward: columns[b*P + p, column(c, k)] = mask * bilinear(input[b, c], point(b, k, p)),
// for rows r in [r0, r1); row r is written at columns + (r - r0) * row_length.
template <typename T>
void im2col_rows(const ChannelsLastGeometry& cl, const T* padded_input, const T* offset, const T* mask,
                 int64_t r0, int64_t r1, T* columns) {
  const DeformConv2dGeometry& g = cl.g;
  const int64_t P = g.out_pixels(), K = g.taps(), G = g.offset_groups;
  const int64_t cpg = g.channels_per_offset_group(), run = cl.run_length();
  int64_t corner[4];
  cl.corner_offsets(corner);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t b = r / P, p = r - b * P;
    const T* image = padded_input + b * cl.padded_image();
    T* row = columns + (r - r0) * cl.row_length();
    for (int64_t og = 0; og < G; ++og) {
      for (int64_t k = 0; k < K; ++k) {
        T y, x, w[4], unused_dy[4], unused_dx[4];
        deform_conv2d_sampling_point(g, offset, b, og, k, p, y, x);
        const int64_t base = padded_bilinear<T>(cl, y, x, w, unused_dy, unused_dx);
        const T m = g.use_mask ? mask[((b * G + og) * K + k) * P + p] : T(1);
        for (int64_t c0 = og * cpg; c0 < (og + 1) * cpg; c0 += run) {
          T* dst = row + cl.column(c0, k);
          if (base < 0) {
            std::fill(dst, dst + run, T(0));
          } else {
            const T* src = image + base + c0;
            weighted_sum4(dst, src + corner[0], src + corner[1], src + corner[2], src + corner[3],
                          w[0] * m, w[1] * m, w[2] * m, w[3] * m, run);
          }
        }
      }
    }
  }
}

// All nb*P rows, in parallel.
template <typename T>
void im2col_channels_last(const ChannelsLastGeometry& cl, const T* padded_input, const T* offset,
                          const T* mask, int64_t nb, T* columns) {
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(cl.row_length(), 1));
  at::parallel_for(0, nb * cl.g.out_pixels(), grain, [&](int64_t begin, int64_t end) {
    im2col_rows(cl, padded_input, offset, mask, begin, end, columns + begin * cl.row_length());
  });
}

// Backward, offset and mask: for every sample, the 4 dot products of its
// grad_columns run with its 4 corner runs give d loss / d (y, x, mask).
// Also records the sample's corners for col2im_channels_last. Rows [r0, r1) only,
// serially; row r of grad_columns is at grad_columns + (r - r0) * row_length.
template <typename T>
void coordinate_grad_rows(const ChannelsLastGeometry& cl, const T* padded_input, const T* offset, const T* mask,
                          const T* grad_columns, int64_t r0, int64_t r1, T* grad_offset, T* grad_mask,
                          PaddedCorners<T>* corners) {
  const DeformConv2dGeometry& g = cl.g;
  const int64_t P = g.out_pixels(), K = g.taps(), G = g.offset_groups;
  const int64_t cpg = g.channels_per_offset_group(), run = cl.run_length();
  int64_t corner[4];
  cl.corner_offsets(corner);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t b = r / P, p = r - b * P;
    const T* image = padded_input + b * cl.padded_image();
    const T* grad_row = grad_columns + (r - r0) * cl.row_length();
    for (int64_t og = 0; og < G; ++og) {
      for (int64_t k = 0; k < K; ++k) {
        T y, x, w[4] = {}, wy[4] = {}, wx[4] = {};
        deform_conv2d_sampling_point(g, offset, b, og, k, p, y, x);
        const int64_t base = padded_bilinear<T>(cl, y, x, w, wy, wx);
        const int64_t s = ((b * G + og) * K + k) * P + p;
        const T m = g.use_mask ? mask[s] : T(1);
        T* go = grad_offset + (b * 2 * G * K + 2 * (og * K + k)) * P + p;
        PaddedCorners<T>& out = corners[(r * G + og) * K + k];
        out.base = base;
        if (base < 0) {
          go[0] = go[P] = T(0);
          if (g.use_mask) grad_mask[s] = T(0);
          continue;
        }
        T dot[4] = {T(0), T(0), T(0), T(0)};
        for (int64_t c0 = og * cpg; c0 < (og + 1) * cpg; c0 += run) {
          const T* src = image + base + c0;
          dot_products4(grad_row + cl.column(c0, k), src + corner[0], src + corner[1], src + corner[2],
                        src + corner[3], run, dot);
        }
        T gy = T(0), gx = T(0), gm = T(0);
        for (int j = 0; j < 4; ++j) {
          gm += w[j] * dot[j];
          gy += wy[j] * dot[j];
          gx += wx[j] * dot[j];
          out.weight[j] = w[j] * m;
        }
        go[0] = gy * m;
        go[P] = gx * m;
        if (g.use_mask) grad_mask[s] = gm;
      }
    }
  }
}

// All nb*P rows, in parallel.
template <typename T>
void coordinate_grad_channels_last(const ChannelsLastGeometry& cl, const T* padded_input,
                                   const T* offset, const T* mask, const T* grad_columns, int64_t nb,
                                   T* grad_offset, T* grad_mask, PaddedCorners<T>* corners) {
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(cl.row_length(), 1));
  at::parallel_for(0, nb * cl.g.out_pixels(), grain, [&](int64_t begin, int64_t end) {
    coordinate_grad_rows(cl, padded_input, offset, mask, grad_columns + begin * cl.row_length(), begin, end,
                         grad_offset, grad_mask, corners);
  });
}

// Backward, input: scatter every grad_columns run to its sample's 4 corners.
// One task per (image, block of channels), each looping over all samples in a
// fixed order: every element of grad_input has exactly one writer and a fixed
// summation order, so the result is deterministic whatever the thread count.
template <typename T>
void col2im_channels_last(const ChannelsLastGeometry& cl, const T* grad_columns,
                          const PaddedCorners<T>* corners, int64_t nb, T* grad_padded_input) {
  const DeformConv2dGeometry& g = cl.g;
  const int64_t P = g.out_pixels(), K = g.taps(), G = g.offset_groups;
  const int64_t cpg = g.channels_per_offset_group(), run = cl.run_length();
  int64_t corner[4];
  cl.corner_offsets(corner);
  // Blocks of at least 16 channels (a 64-byte line of float32), small enough to
  // give every thread several tasks; a block never leaves its run.
  const int64_t wanted_tasks = 4 * at::get_num_threads();
  int64_t block = (nb * g.channels + wanted_tasks - 1) / wanted_tasks;
  block = std::min(run, std::max<int64_t>(16, (block + 7) / 8 * 8));
  const int64_t blocks_per_run = (run + block - 1) / block;
  const int64_t runs = g.channels / run;
  at::parallel_for(0, nb * runs * blocks_per_run, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / (runs * blocks_per_run);
      const int64_t rest = t - b * runs * blocks_per_run;
      const int64_t run_index = rest / blocks_per_run;
      const int64_t c0 = run_index * run + (rest - run_index * blocks_per_run) * block;
      const int64_t length = std::min(block, (run_index + 1) * run - c0);
      const int64_t og = c0 / cpg;
      T* image = grad_padded_input + b * cl.padded_image() + c0;
      for (int64_t p = 0; p < P; ++p) {
        const int64_t r = b * P + p;
        const T* grad_row = grad_columns + r * cl.row_length();
        const PaddedCorners<T>* sample = corners + (r * G + og) * K;
        for (int64_t k = 0; k < K; ++k) {
          if (sample[k].base < 0) continue;
          const T* w = sample[k].weight;
          T* dst = image + sample[k].base;
          scatter_add4(dst + corner[0], dst + corner[1], dst + corner[2], dst + corner[3],
                       grad_row + cl.column(c0, k), w[0], w[1], w[2], w[3], length);
        }
      }
    }
  });
}

}  // namespace DCN_CPU_ISA
}  // namespace cpu
}  // namespace dcn_det
