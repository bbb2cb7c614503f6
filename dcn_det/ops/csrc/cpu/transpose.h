// The CPU kernels' NCHW <-> channels-last transposes (cpu/transpose_loops.h), typed,
// through the loop table of the selected instruction set (cpu/isa/loop_tables.h).
#pragma once

#include <cstdint>

#include "isa/loop_tables.h"

namespace dcn_det {
namespace cpu {

template <typename T>
constexpr bool kTransposable = sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8;

// input [nb, C, H, W] (contiguous) -> interior of padded [nb, H+2, W+2, C]; border untouched.
template <typename T>
void nchw_to_padded_nhwc(const T* input, int64_t nb, int64_t c, int64_t h, int64_t w, T* padded) {
  static_assert(kTransposable<T>, "2-, 4- or 8-byte elements");
  transpose_loops(sizeof(T)).nchw_to_padded_nhwc(input, nb, c, h, w, padded);
}

// Interior of padded [nb, H+2, W+2, C] -> output [nb, C, H, W] (contiguous).
template <typename T>
void padded_nhwc_to_nchw(const T* padded, int64_t nb, int64_t c, int64_t h, int64_t w, T* output) {
  static_assert(kTransposable<T>, "2-, 4- or 8-byte elements");
  transpose_loops(sizeof(T)).padded_nhwc_to_nchw(padded, nb, c, h, w, output);
}

// rows [nb*P, C] with row stride `ld` (channels-last) -> output [nb, C, P] (contiguous).
template <typename T>
void nhwc_to_nchw(const T* rows, int64_t ld, int64_t nb, int64_t c, int64_t p, T* output) {
  static_assert(kTransposable<T>, "2-, 4- or 8-byte elements");
  transpose_loops(sizeof(T)).nhwc_to_nchw(rows, ld, nb, c, p, output);
}

}  // namespace cpu
}  // namespace dcn_det
