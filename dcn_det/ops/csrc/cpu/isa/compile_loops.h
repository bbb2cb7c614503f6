// The body of every loops_<isa>.cpp: compiles deform_conv2d_loops.h and
// deform_psroi_pool_loops.h in namespace DCN_CPU_ISA, for target DCN_ISA_TARGET
// (none: the build's baseline), with DCN_VECTOR_BYTES-byte vectors, and defines
// loop_tables_<DCN_CPU_ISA>() from them. Deliberately without include guard.
//
// Every header the loops need is included first, compiled for the baseline: only
// the loops themselves (in their own namespace) get the wider target, so no inline
// function of a shared header can exist in a wide variant the linker might pick.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "loop_tables.h"

#define DCN_PRAGMA(x) _Pragma(#x)
#define DCN_CONCAT_(a, b) a##b
#define DCN_CONCAT(a, b) DCN_CONCAT_(a, b)

#ifdef DCN_ISA_TARGET
#ifdef __clang__
#define DCN_TARGET_PUSH(t) DCN_PRAGMA(clang attribute push(__attribute__((target(t))), apply_to = function))
DCN_TARGET_PUSH(DCN_ISA_TARGET)
#else
#define DCN_TARGET_PUSH(t) DCN_PRAGMA(GCC target(t))
#pragma GCC push_options
DCN_TARGET_PUSH(DCN_ISA_TARGET)
#endif
#endif

#include "../deform_conv2d_loops.h"
#include "../deform_psroi_pool_loops.h"
#include "../deform_psroi_pool_grouped_loops.h"
#include "../transpose_loops.h"

#ifdef DCN_ISA_TARGET
#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

namespace dcn_det {
namespace cpu {
namespace DCN_CPU_ISA {
namespace {

template <typename T>
DeformConv2dLoops<T> conv_loops() {
  return {&im2col_channels_last<T>, &im2col_rows<T>, &coordinate_grad_channels_last<T>, &coordinate_grad_rows<T>,
          &col2im_channels_last<T>};
}

template <typename T>
DeformPSRoIPoolLoops<T> pool_loops() {
  return {&psroi_forward_channels_last<T>, &psroi_input_grad_channels_last<T>, &psroi_offset_grad_channels_last<T>,
          &psroi_forward_grouped<T>, &psroi_input_grad_grouped<T>, &psroi_offset_grad_grouped<T>};
}

template <int N>
TransposeLoops transposes() {
  return {&nchw_to_padded_nhwc<N>, &padded_nhwc_to_nchw<N>, &nhwc_to_nchw<N>};
}

}  // namespace
}  // namespace DCN_CPU_ISA

const LoopTables& DCN_CONCAT(loop_tables_, DCN_CPU_ISA)() {
  static const LoopTables tables{DCN_CPU_ISA::conv_loops<float>(), DCN_CPU_ISA::conv_loops<double>(),
                                 DCN_CPU_ISA::pool_loops<float>(), DCN_CPU_ISA::pool_loops<double>(),
                                 DCN_CPU_ISA::transposes<2>(), DCN_CPU_ISA::transposes<4>(),
                                 DCN_CPU_ISA::transposes<8>()};
  return tables;
}

}  // namespace cpu
}  // namespace dcn_det
