// Host-side algorithm of the device deformable convolution (NCHW, one thread per
// element), plus the helpers the CPU kernel shares with it (operand conversion,
// geometry, chunk size; the CPU algorithm itself is channels-last, see
// cpu/deform_conv2d_kernel.cpp). Per chunk of images:
//   1. samples  = corner indices + weights of every (image, offset group, tap, pixel)
//   2. columns  = deformable im2col                       [C*K, nb*P]
//   3. output   = weight (per group) @ columns            (at::bmm: BLAS / cuBLAS)
// and backward:
//   grad_weight += grad_output @ columns^T,  grad_columns = weight^T @ grad_output,
//   grad_input  = col2im(grad_columns),      grad_offset/grad_mask = coordinate grads.
//
// The element steps are DeformConv2dDeviceBackend<Launcher> below: which of the
// *Op structs of deform_conv2d_elements.h runs over how many indices. A Launcher
// runs an Op for every index in [0, n) and has a `Guard` type constructed on the
// input's device: CudaLauncher (cuda/cuda_launch.h, one GPU thread per index) and
// HostLauncher (cpu/host_launch.h, the host device path the tests run). So the
// launch decisions, the chunking and the element math are one body of code for
// both.
//
// Images are processed in chunks so the column buffer stays bounded; any batch
// size works (the last chunk may be smaller). float16/bfloat16 are computed in
// float32 and rounded once at the end.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Dispatch.h>

#include <algorithm>

#include "../deform_conv2d.h"
#include "../host_utils.h"
#include "../test_hooks.h"
#include "deform_conv2d_elements.h"

namespace dcn_det {

// Upper bound on the column buffer of one chunk, in elements (64 MiB of float32);
// the test suite lowers it (test_hooks.h) to run small inputs through many chunks.
constexpr int64_t kDeformConvColumnBudget = int64_t(1) << 24;

inline int64_t deform_conv2d_column_budget() {
  const int64_t override_budget = column_budget_override();
  return override_budget > 0 ? override_budget : kDeformConvColumnBudget;
}

inline DeformConv2dGeometry make_deform_conv2d_geometry(const at::Tensor& input,
                                                        const at::Tensor& weight, bool use_mask,
                                                        const DeformConv2dParams& p,
                                                        std::pair<int64_t, int64_t> out_size) {
  DeformConv2dGeometry g;
  g.channels = input.size(1);
  g.height = input.size(2);
  g.width = input.size(3);
  g.kernel_h = weight.size(2);
  g.kernel_w = weight.size(3);
  g.stride_h = p.stride_h;
  g.stride_w = p.stride_w;
  g.pad_h = p.pad_h;
  g.pad_w = p.pad_w;
  g.dilation_h = p.dilation_h;
  g.dilation_w = p.dilation_w;
  g.out_h = out_size.first;
  g.out_w = out_size.second;
  g.offset_groups = p.offset_groups;
  g.use_mask = use_mask;
  g.border = p.border;
  return g;
}

// The operands in the compute dtype, contiguous (mask undefined when absent).
struct DeformConv2dOperands {
  at::Tensor input, offset, weight, mask;
  DeformConv2dOperands(const at::Tensor& input_, const at::Tensor& offset_, const at::Tensor& weight_,
                       const std::optional<at::Tensor>& mask_, at::ScalarType ctype)
      : input(input_.to(ctype).contiguous()),
        offset(offset_.to(ctype).contiguous()),
        weight(weight_.to(ctype).contiguous()),
        mask(mask_.has_value() ? mask_->to(ctype).contiguous() : at::Tensor()) {}
};

inline int64_t deform_conv2d_chunk_size(const DeformConv2dGeometry& g, int64_t batch) {
  const int64_t per_image = std::max<int64_t>(1, g.channels * g.taps() * g.out_pixels());
  return std::max<int64_t>(1, std::min<int64_t>(batch, deform_conv2d_column_budget() / per_image));
}

// The element steps of the device algorithm: each launches one *Op of
// deform_conv2d_elements.h over its index range.
template <typename Launcher>
struct DeformConv2dDeviceBackend {
  using Guard = typename Launcher::Guard;

  template <typename T>
  static void fill_samples(const DeformConv2dGeometry& g, const T* offset, const T* mask, int64_t nb,
                           int64_t* sample_index, T* sample_weight) {
    Launcher::launch(nb * g.samples_per_image(),
                     DeformConv2dFillSamplesOp<T>{g, offset, mask, sample_index, sample_weight});
  }

  template <typename T>
  static void im2col(const DeformConv2dGeometry& g, const T* input, const int64_t* sample_index,
                     const T* sample_weight, int64_t nb, T* columns) {
    Launcher::launch(g.channels * g.taps() * nb * g.out_pixels(),
                     DeformConv2dIm2colOp<T>{g, input, sample_index, sample_weight, nb, columns});
  }

  // Atomic scatter, one index per column element; under
  // torch.use_deterministic_algorithms(True) one owner per (image, channel) plane
  // instead: bitwise reproducible, and much less parallel.
  template <typename T>
  static void col2im(const DeformConv2dGeometry& g, const T* grad_columns, const int64_t* sample_index,
                     const T* sample_weight, int64_t nb, T* grad_input) {
    if (at::globalContext().deterministicAlgorithms()) {
      Launcher::launch(nb * g.channels, DeformConv2dCol2imOp<T, true>{g, grad_columns, sample_index,
                                                                      sample_weight, nb, grad_input});
      return;
    }
    Launcher::launch(g.channels * g.taps() * nb * g.out_pixels(),
                     DeformConv2dCol2imOp<T, false>{g, grad_columns, sample_index, sample_weight, nb, grad_input});
  }

  template <typename T>
  static void coordinate_grad(const DeformConv2dGeometry& g, const T* input, const T* offset, const T* mask,
                              const T* grad_columns, int64_t nb, T* grad_offset, T* grad_mask) {
    Launcher::launch(nb * g.samples_per_image(), DeformConv2dCoordinateGradOp<T>{
                                                     g, input, offset, mask, grad_columns, nb, grad_offset, grad_mask});
  }
};

// Columns of one chunk. Returns [C*K, nb*P]; also fills the sample buffers.
template <typename Backend, typename T>
at::Tensor deform_conv2d_chunk_columns(const DeformConv2dGeometry& g, const at::Tensor& input,
                                       const at::Tensor& offset, const at::Tensor& mask,
                                       int64_t b0, int64_t nb, at::Tensor& sample_index,
                                       at::Tensor& sample_weight) {
  const auto opts = input.options();
  sample_index = at::empty({nb * g.samples_per_image() * 4}, opts.dtype(at::kLong));
  sample_weight = at::empty({nb * g.samples_per_image() * 4}, opts);
  const int64_t offset_stride = offset.size(1) * g.out_pixels();
  const T* mask_ptr = g.use_mask ? mask.const_data_ptr<T>() + b0 * g.samples_per_image() : nullptr;
  Backend::template fill_samples<T>(g, offset.const_data_ptr<T>() + b0 * offset_stride, mask_ptr,
                                    nb, sample_index.mutable_data_ptr<int64_t>(),
                                    sample_weight.mutable_data_ptr<T>());
  at::Tensor columns = at::empty({g.channels * g.taps(), nb * g.out_pixels()}, opts);
  Backend::template im2col<T>(g, input.const_data_ptr<T>() + b0 * g.channels * g.plane(),
                              sample_index.const_data_ptr<int64_t>(),
                              sample_weight.const_data_ptr<T>(), nb,
                              columns.mutable_data_ptr<T>());
  return columns;
}

template <typename Backend>
at::Tensor deform_conv2d_forward_impl(const at::Tensor& input_, const at::Tensor& offset_,
                                      const at::Tensor& weight_,
                                      const std::optional<at::Tensor>& bias_,
                                      const std::optional<at::Tensor>& mask_,
                                      const DeformConv2dParams& p) {
  const auto out_size = check_deform_conv2d_args(input_, offset_, weight_, bias_, mask_, p);
  const auto ctype = compute_type(input_.scalar_type());
  const DeformConv2dOperands in(input_, offset_, weight_, mask_, ctype);
  const at::Tensor &input = in.input, &offset = in.offset, &weight = in.weight, &mask = in.mask;
  const bool use_mask = mask_.has_value();
  const auto g = make_deform_conv2d_geometry(input, weight, use_mask, p, out_size);

  const int64_t n = input.size(0);
  const int64_t co = weight.size(0);
  const int64_t P = g.out_pixels();
  at::Tensor output = at::empty({n, co, g.out_h, g.out_w}, input.options());
  // [groups, Co/groups, C/groups*K]: one GEMM per weight group.
  const at::Tensor w = weight.view({p.groups, co / p.groups, -1});
  const int64_t chunk = deform_conv2d_chunk_size(g, n);

  AT_DISPATCH_FLOATING_TYPES(ctype, "dcn_det::deform_conv2d", [&] {
    for (int64_t b0 = 0; b0 < n; b0 += chunk) {
      const int64_t nb = std::min(chunk, n - b0);
      at::Tensor sample_index, sample_weight;
      at::Tensor columns = deform_conv2d_chunk_columns<Backend, scalar_t>(
          g, input, offset, mask, b0, nb, sample_index, sample_weight);
      at::Tensor out = at::bmm(w, columns.view({p.groups, -1, nb * P}));  // [groups, Co/g, nb*P]
      output.narrow(0, b0, nb).copy_(out.view({co, nb, P}).transpose(0, 1).view({nb, co, g.out_h, g.out_w}));
    }
  });
  if (bias_.has_value()) {
    output.add_(bias_->to(ctype).view({1, co, 1, 1}));
  }
  return output.to(input_.scalar_type());
}

template <typename Backend>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
deform_conv2d_backward_impl(const at::Tensor& grad_output_, const at::Tensor& input_,
                            const at::Tensor& offset_, const at::Tensor& weight_,
                            const std::optional<at::Tensor>& mask_, const DeformConv2dParams& p) {
  const auto out_size = check_deform_conv2d_args(input_, offset_, weight_, std::nullopt, mask_, p,
                                                 &grad_output_);
  const auto dtype = input_.scalar_type();
  const auto ctype = compute_type(dtype);
  const DeformConv2dOperands in(input_, offset_, weight_, mask_, ctype);
  const at::Tensor &input = in.input, &offset = in.offset, &weight = in.weight, &mask = in.mask;
  const at::Tensor grad_output = grad_output_.to(ctype).contiguous();
  const bool use_mask = mask_.has_value();
  const auto g = make_deform_conv2d_geometry(input, weight, use_mask, p, out_size);

  const int64_t n = input.size(0);
  const int64_t co = weight.size(0);
  const int64_t P = g.out_pixels();
  at::Tensor grad_input = at::zeros_like(input);
  at::Tensor grad_offset = at::zeros_like(offset);
  at::Tensor grad_mask = use_mask ? at::zeros_like(mask) : at::empty({0}, input.options());
  at::Tensor grad_weight = at::zeros_like(weight);
  const at::Tensor w = weight.view({p.groups, co / p.groups, -1});
  at::Tensor gw = grad_weight.view({p.groups, co / p.groups, -1});
  const int64_t chunk = deform_conv2d_chunk_size(g, n);

  AT_DISPATCH_FLOATING_TYPES(ctype, "dcn_det::_deform_conv2d_backward", [&] {
    for (int64_t b0 = 0; b0 < n; b0 += chunk) {
      const int64_t nb = std::min(chunk, n - b0);
      at::Tensor sample_index, sample_weight;
      at::Tensor columns = deform_conv2d_chunk_columns<Backend, scalar_t>(
          g, input, offset, mask, b0, nb, sample_index, sample_weight);
      // grad_output chunk as [groups, Co/groups, nb*P]
      at::Tensor go = grad_output.narrow(0, b0, nb)
                          .view({nb, co, P})
                          .transpose(0, 1)
                          .reshape({p.groups, co / p.groups, nb * P});
      const at::Tensor cols = columns.view({p.groups, -1, nb * P});
      gw.baddbmm_(go, cols.transpose(1, 2));
      at::Tensor grad_columns = at::bmm(w.transpose(1, 2), go);  // [groups, C/g*K, nb*P]
      const int64_t image = g.channels * g.plane();
      Backend::template col2im<scalar_t>(g, grad_columns.const_data_ptr<scalar_t>(),
                                         sample_index.const_data_ptr<int64_t>(),
                                         sample_weight.const_data_ptr<scalar_t>(), nb,
                                         grad_input.mutable_data_ptr<scalar_t>() + b0 * image);
      const int64_t offset_stride = offset.size(1) * P;
      const int64_t mask_stride = g.samples_per_image();
      Backend::template coordinate_grad<scalar_t>(
          g, input.const_data_ptr<scalar_t>() + b0 * image,
          offset.const_data_ptr<scalar_t>() + b0 * offset_stride,
          use_mask ? mask.const_data_ptr<scalar_t>() + b0 * mask_stride : nullptr,
          grad_columns.const_data_ptr<scalar_t>(), nb,
          grad_offset.mutable_data_ptr<scalar_t>() + b0 * offset_stride,
          use_mask ? grad_mask.mutable_data_ptr<scalar_t>() + b0 * mask_stride : nullptr);
    }
  });
  at::Tensor grad_bias = grad_output.sum({0, 2, 3});
  return {grad_input.to(dtype), grad_offset.to(dtype), grad_weight.to(dtype), grad_bias.to(dtype),
          grad_mask.to(dtype)};
}

// The kernels registered for a device (Backend = DeformConv2dDeviceBackend<Launcher>):
// the schema's signature over the impls above.
template <typename Backend>
at::Tensor deform_conv2d_forward_kernel(const at::Tensor& input, const at::Tensor& offset,
                                        const at::Tensor& weight,
                                        const std::optional<at::Tensor>& bias,
                                        const std::optional<at::Tensor>& mask, int64_t stride_h,
                                        int64_t stride_w, int64_t pad_h, int64_t pad_w,
                                        int64_t dilation_h, int64_t dilation_w, int64_t groups,
                                        int64_t offset_groups, int64_t border) {
  const typename Backend::Guard guard(input.device());
  return deform_conv2d_forward_impl<Backend>(
      input, offset, weight, bias, mask,
      {stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups, offset_groups, border});
}

template <typename Backend>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> deform_conv2d_backward_kernel(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& offset,
    const at::Tensor& weight, const std::optional<at::Tensor>& mask, int64_t stride_h,
    int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
    int64_t groups, int64_t offset_groups, int64_t border) {
  const typename Backend::Guard guard(input.device());
  return deform_conv2d_backward_impl<Backend>(
      grad_output, input, offset, weight, mask,
      {stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups, offset_groups, border});
}

}  // namespace dcn_det
