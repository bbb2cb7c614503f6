// Cache-blocked 2-D transposes between the NCHW tensors of the op's interface and
// the channels-last buffers of the CPU kernel. Why not at::Tensor::copy_ of a
// permuted view: measured 3-4 ns per element on a 64x128x128 map (a strided read
// or write per element); a tile of 16x16 keeps both sides in L1.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

namespace dcn_det {
namespace cpu {

constexpr int64_t kTransposeTile = 16;

// dst[j * dst_ld + i] = src[i * src_ld + j] for i < rows, j < cols.
// The inner loop runs along the side with the larger leading dimension, so that side
// is read or written one whole cache line at a time: with a power-of-two stride (a
// 128x128 plane is 64 KiB) the 16 lines of a tile share one L1 set, and touching them
// element by element thrashed it (the NCHW -> NHWC copy took 3 ms for 1M floats).
template <typename T>
inline void transpose_tiles(const T* __restrict src, int64_t rows, int64_t cols, int64_t src_ld,
                            T* __restrict dst, int64_t dst_ld) {
  const bool src_rows_inner = src_ld > dst_ld;  // walk src rows contiguously
  for (int64_t i0 = 0; i0 < rows; i0 += kTransposeTile) {
    const int64_t i1 = std::min(rows, i0 + kTransposeTile);
    for (int64_t j0 = 0; j0 < cols; j0 += kTransposeTile) {
      const int64_t j1 = std::min(cols, j0 + kTransposeTile);
      if (src_rows_inner) {
        for (int64_t i = i0; i < i1; ++i) {
          for (int64_t j = j0; j < j1; ++j) dst[j * dst_ld + i] = src[i * src_ld + j];
        }
      } else {
        for (int64_t j = j0; j < j1; ++j) {
          for (int64_t i = i0; i < i1; ++i) dst[j * dst_ld + i] = src[i * src_ld + j];
        }
      }
    }
  }
}

// input [nb, C, H, W] (contiguous) -> interior of padded [nb, H+2, W+2, C].
// The border is left untouched.
template <typename T>
void nchw_to_padded_nhwc(const T* input, int64_t nb, int64_t c, int64_t h, int64_t w, T* padded) {
  const int64_t padded_row = (w + 2) * c;
  at::parallel_for(0, nb * h, 1, [&](int64_t begin, int64_t end) {
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / h, y = bh - b * h;
      // [C, W] rows of this image row (stride H*W) -> [W, C] at padded (y+1, 1).
      transpose_tiles(input + b * c * h * w + y * w, c, w, h * w,
                      padded + (b * (h + 2) + y + 1) * padded_row + c, c);
    }
  });
}

// Interior of padded [nb, H+2, W+2, C] -> output [nb, C, H, W] (contiguous).
template <typename T>
void padded_nhwc_to_nchw(const T* padded, int64_t nb, int64_t c, int64_t h, int64_t w, T* output) {
  const int64_t padded_row = (w + 2) * c;
  at::parallel_for(0, nb * h, 1, [&](int64_t begin, int64_t end) {
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / h, y = bh - b * h;
      transpose_tiles(padded + (b * (h + 2) + y + 1) * padded_row + c, w, c, c,
                      output + b * c * h * w + y * w, h * w);
    }
  });
}

// rows [nb*P, C] with row stride `ld` (channels-last) -> output [nb, C, P] (contiguous).
template <typename T>
void nhwc_to_nchw(const T* rows, int64_t ld, int64_t nb, int64_t c, int64_t p, T* output) {
  const int64_t tiles = (p + 63) / 64;  // 64 pixels per task
  at::parallel_for(0, nb * tiles, 1, [&](int64_t begin, int64_t end) {
    for (int64_t bt = begin; bt < end; ++bt) {
      const int64_t b = bt / tiles, p0 = (bt - b * tiles) * 64;
      const int64_t n = std::min<int64_t>(64, p - p0);
      transpose_tiles(rows + (b * p + p0) * ld, n, c, ld, output + b * c * p + p0, p);
    }
  });
}

}  // namespace cpu
}  // namespace dcn_det
