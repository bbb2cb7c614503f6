// The CPU loops that are compiled once per instruction set, as tables of function
// pointers, and the choice of table at run time (cpu_isa.cpp).
//
// Why: the loops are vectorised by the compiler, and what it can emit depends on the
// target. A library users install must run on any x86-64 CPU, so the baseline build
// targets SSE2; the same loops compiled for AVX2+FMA and AVX-512 run when the CPU has
// them (as PyTorch does for its own kernels). Each loops_<isa>.cpp compiles
// deform_conv2d_loops.h / deform_psroi_pool_loops.h inside its target pragma and in
// its own namespace, so no inline function compiled for a wider target can be picked
// by the linker for baseline code; everything shared is included before the pragma.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../deform_conv2d_channels_last.h"
#include "../deform_psroi_pool_channels_last.h"
#include "cpu_isa.h"

namespace dcn_det {
namespace cpu {

template <typename T>
struct DeformConv2dLoops {
  void (*im2col)(const ChannelsLastGeometry&, const T* padded_input, const T* offset, const T* mask, int64_t nb,
                 T* columns);
  // Rows [r0, r1) only, serially (the fused forward calls it once per tile, inside its own parallel loop).
  void (*im2col_rows)(const ChannelsLastGeometry&, const T* padded_input, const T* offset, const T* mask,
                      int64_t r0, int64_t r1, T* columns);
  void (*coordinate_grad)(const ChannelsLastGeometry&, const T* padded_input, const T* offset, const T* mask,
                          const T* grad_columns, int64_t nb, T* grad_offset, T* grad_mask,
                          PaddedCorners<T>* corners);
  // Rows [r0, r1) only, serially; grad_columns points at row r0 (the fused backward's tile).
  void (*coordinate_grad_rows)(const ChannelsLastGeometry&, const T* padded_input, const T* offset, const T* mask,
                               const T* grad_columns, int64_t r0, int64_t r1, T* grad_offset, T* grad_mask,
                               PaddedCorners<T>* corners);
  void (*col2im)(const ChannelsLastGeometry&, const T* grad_columns, const PaddedCorners<T>* corners, int64_t nb,
                 T* grad_padded_input);
};

template <typename T>
struct DeformPSRoIPoolLoops {
  void (*forward)(const GatheredBins<T>&, const T* input_nhwc, int64_t num_rois, T* output);
  void (*input_grad)(const GatheredBins<T>&, const T* grad_output, int64_t num_rois, T* grad_input_nhwc);
  void (*offset_grad)(const GatheredBins<T>&, const T* input_nhwc, const T* grad_output, int64_t num_rois,
                      T* grad_offset);
  // group_size > 1, NCHW (cpu/deform_psroi_pool_grouped_loops.h).
  void (*forward_grouped)(const DeformPSRoIPoolGeometry&, const T* input, const T* rois, const T* offset,
                          int64_t num_rois, T* output);
  void (*input_grad_grouped)(const DeformPSRoIPoolGeometry&, const T* grad_output, const T* rois, const T* offset,
                             int64_t num_rois, T* grad_input);
  void (*offset_grad_grouped)(const DeformPSRoIPoolGeometry&, const T* grad_output, const T* input, const T* rois,
                              const T* offset, int64_t num_rois, T* grad_offset);
};

// The transposes of cpu/transpose_loops.h for one element size (typed in cpu/transpose.h).
struct TransposeLoops {
  void (*nchw_to_padded_nhwc)(const void* input, int64_t nb, int64_t c, int64_t h, int64_t w, void* padded);
  void (*padded_nhwc_to_nchw)(const void* padded, int64_t nb, int64_t c, int64_t h, int64_t w, void* output);
  void (*nhwc_to_nchw)(const void* rows, int64_t ld, int64_t nb, int64_t c, int64_t p, void* output);
};

struct LoopTables {
  DeformConv2dLoops<float> conv_float;
  DeformConv2dLoops<double> conv_double;
  DeformPSRoIPoolLoops<float> pool_float;
  DeformPSRoIPoolLoops<double> pool_double;
  TransposeLoops transpose2, transpose4, transpose8;  // element sizes in bytes
};

// One per instruction set (loops_<isa>.cpp); the wider ones only where built (x86-64).
const LoopTables& loop_tables_baseline();
const LoopTables& loop_tables_avx2();
const LoopTables& loop_tables_avx512();

// The table of selected_cpu_isa() (cpu_isa.h).
const LoopTables& selected_loop_tables();

template <typename T>
const DeformConv2dLoops<T>& deform_conv2d_loops() {
  if constexpr (std::is_same_v<T, float>) {
    return selected_loop_tables().conv_float;
  } else {
    return selected_loop_tables().conv_double;
  }
}

// Transposes of `element_size`-byte elements: 2 (bfloat16, half), 4 or 8.
inline const TransposeLoops& transpose_loops(size_t element_size) {
  const LoopTables& tables = selected_loop_tables();
  return element_size == 2 ? tables.transpose2 : element_size == 4 ? tables.transpose4 : tables.transpose8;
}

template <typename T>
const DeformPSRoIPoolLoops<T>& deform_psroi_pool_loops() {
  if constexpr (std::is_same_v<T, float>) {
    return selected_loop_tables().pool_float;
  } else {
    return selected_loop_tables().pool_double;
  }
}

}  // namespace cpu
}  // namespace dcn_det
