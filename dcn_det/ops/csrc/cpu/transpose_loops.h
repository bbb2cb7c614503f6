// Cache-blocked 2-D transposes between the NCHW tensors of the op's interface and
// the channels-last buffers of the CPU kernels. Why not at::Tensor::copy_ of a
// permuted view: measured 3-4 ns per element on a 64x128x128 map (a strided read
// or write per element); a tile of 16x16 keeps both sides in L1.
//
// A transpose only moves bits, so it is written per element size N (bytes copied with
// memcpy: no type punning) and serves float32, float64 and bfloat16 alike. Compiled once
// per instruction set (cpu/isa/), called through cpu/transpose.h.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace dcn_det {
namespace cpu {
namespace DCN_CPU_ISA {

constexpr int64_t kTransposeTile = 16;

#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define DCN_SHUFFLE(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else  // older GCC: __builtin_shuffle with a mask vector
#define DCN_SHUFFLE(a, b, ...) __builtin_shuffle(a, b, Lanes8{__VA_ARGS__})
#endif

// 8x8 blocks of 4-byte elements in registers: three rounds of two-input shuffles (the
// unpack / shuffle / 128-bit-lane permute pattern of an AVX transpose, written with
// vector extensions). Measured (perf, 1x64x128x128 forward, one thread): scalar copies
// ~5 % of the time with every instruction set; this, 2.7 % with AVX-512, but 8 % on the
// SSE2 baseline (two 16-byte halves per shuffle), which keeps the scalar copies.
#ifdef DCN_ISA_TARGET
constexpr bool kRegisterTranspose = true;
#else
constexpr bool kRegisterTranspose = false;
#endif
typedef uint32_t Lanes8 __attribute__((vector_size(32)));

inline void transpose_8x8(const unsigned char* src, int64_t src_ld, unsigned char* dst, int64_t dst_ld) {
  Lanes8 r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) std::memcpy(&r[i], src + i * src_ld * 4, 32);
  for (int i = 0; i < 8; i += 2) {
    t[i] = DCN_SHUFFLE(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[i + 1] = DCN_SHUFFLE(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = DCN_SHUFFLE(t[i], t[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
    u[i + 1] = DCN_SHUFFLE(t[i], t[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    u[i + 2] = DCN_SHUFFLE(t[i + 1], t[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
    u[i + 3] = DCN_SHUFFLE(t[i + 1], t[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
  }
  for (int j = 0; j < 4; ++j) {  // u[j]: columns j and j+4 of rows 0-3; u[j+4]: of rows 4-7
    const Lanes8 low = DCN_SHUFFLE(u[j], u[j + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    const Lanes8 high = DCN_SHUFFLE(u[j], u[j + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    std::memcpy(dst + j * dst_ld * 4, &low, 32);
    std::memcpy(dst + (j + 4) * dst_ld * 4, &high, 32);
  }
}
#undef DCN_SHUFFLE

// dst[j * dst_ld + i] = src[i * src_ld + j] for i < rows, j < cols (elements of N bytes).
// The inner loop runs along the side with the larger leading dimension, so that side
// is read or written one whole cache line at a time: with a power-of-two stride (a
// 128x128 plane is 64 KiB) the 16 lines of a tile share one L1 set, and touching them
// element by element thrashed it (the NCHW -> NHWC copy took 3 ms for 1M floats).
template <int N>
inline void transpose_tiles(const unsigned char* __restrict src, int64_t rows, int64_t cols, int64_t src_ld,
                            unsigned char* __restrict dst, int64_t dst_ld) {
  const bool src_rows_inner = src_ld > dst_ld;  // walk src rows contiguously
  for (int64_t i0 = 0; i0 < rows; i0 += kTransposeTile) {
    const int64_t i1 = std::min(rows, i0 + kTransposeTile);
    for (int64_t j0 = 0; j0 < cols; j0 += kTransposeTile) {
      const int64_t j1 = std::min(cols, j0 + kTransposeTile);
      if (kRegisterTranspose && N == 4 && i1 - i0 == kTransposeTile && j1 - j0 == kTransposeTile) {
        for (int64_t i = i0; i < i1; i += 8) {
          for (int64_t j = j0; j < j1; j += 8) {
            transpose_8x8(src + (i * src_ld + j) * 4, src_ld, dst + (j * dst_ld + i) * 4, dst_ld);
          }
        }
      } else if (src_rows_inner) {
        for (int64_t i = i0; i < i1; ++i) {
          for (int64_t j = j0; j < j1; ++j) std::memcpy(dst + (j * dst_ld + i) * N, src + (i * src_ld + j) * N, N);
        }
      } else {
        for (int64_t j = j0; j < j1; ++j) {
          for (int64_t i = i0; i < i1; ++i) std::memcpy(dst + (j * dst_ld + i) * N, src + (i * src_ld + j) * N, N);
        }
      }
    }
  }
}

// input [nb, C, H, W] (contiguous) -> interior of padded [nb, H+2, W+2, C].
// The border is left untouched.
template <int N>
void nchw_to_padded_nhwc(const void* input_, int64_t nb, int64_t c, int64_t h, int64_t w, void* padded_) {
  const auto* input = static_cast<const unsigned char*>(input_);
  auto* padded = static_cast<unsigned char*>(padded_);
  const int64_t padded_row = (w + 2) * c;
  at::parallel_for(0, nb * h, 1, [&](int64_t begin, int64_t end) {
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / h, y = bh - b * h;
      // [C, W] rows of this image row (stride H*W) -> [W, C] at padded (y+1, 1).
      transpose_tiles<N>(input + (b * c * h * w + y * w) * N, c, w, h * w,
                         padded + ((b * (h + 2) + y + 1) * padded_row + c) * N, c);
    }
  });
}

// Interior of padded [nb, H+2, W+2, C] -> output [nb, C, H, W] (contiguous).
template <int N>
void padded_nhwc_to_nchw(const void* padded_, int64_t nb, int64_t c, int64_t h, int64_t w, void* output_) {
  const auto* padded = static_cast<const unsigned char*>(padded_);
  auto* output = static_cast<unsigned char*>(output_);
  const int64_t padded_row = (w + 2) * c;
  at::parallel_for(0, nb * h, 1, [&](int64_t begin, int64_t end) {
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / h, y = bh - b * h;
      transpose_tiles<N>(padded + ((b * (h + 2) + y + 1) * padded_row + c) * N, w, c, c,
                         output + (b * c * h * w + y * w) * N, h * w);
    }
  });
}

// rows [nb*P, C] with row stride `ld` (channels-last) -> output [nb, C, P] (contiguous).
template <int N>
void nhwc_to_nchw(const void* rows_, int64_t ld, int64_t nb, int64_t c, int64_t p, void* output_) {
  const auto* rows = static_cast<const unsigned char*>(rows_);
  auto* output = static_cast<unsigned char*>(output_);
  const int64_t tiles = (p + 63) / 64;  // 64 pixels per task
  at::parallel_for(0, nb * tiles, 1, [&](int64_t begin, int64_t end) {
    for (int64_t bt = begin; bt < end; ++bt) {
      const int64_t b = bt / tiles, p0 = (bt - b * tiles) * 64;
      const int64_t n = std::min<int64_t>(64, p - p0);
      transpose_tiles<N>(rows + (b * p + p0) * ld * N, n, c, ld, output + (b * c * p + p0) * N, p);
    }
  });
}

}  // namespace DCN_CPU_ISA
}  // namespace cpu
}  // namespace dcn_det
