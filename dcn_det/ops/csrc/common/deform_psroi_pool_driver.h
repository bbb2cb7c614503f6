// Host side of deformable PS-RoI pooling shared by the CPU and device kernels:
// validation, dtype handling (float16/bfloat16 computed in float32), buffers.
// `Backend` supplies
//   forward<T>(geom, input, rois, offset, num_rois, output)
//   backward<T>(geom, grad_output, input, rois, offset, num_rois, grad_input, grad_offset)
// with grad_input / grad_offset zero-initialised (grad_offset null when no_trans), a
// `Guard` type constructed on the input's device. The CPU backend
// (cpu/deform_psroi_pool_kernel.cpp) is deterministic. The device backend below
// launches the *Op structs of deform_psroi_pool_elements.h through a Launcher
// (CUDA: cuda/cuda_launch.h; the host device path: cpu/host_launch.h); its backward
// scatters with atomic adds and switches to the atomic-free owner ops under
// torch.use_deterministic_algorithms(True).
#pragma once

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Dispatch.h>

#include "../deform_psroi_pool.h"
#include "../host_utils.h"

namespace dcn_det {

template <typename Launcher>
struct DeformPSRoIPoolDeviceBackend {
  using Guard = typename Launcher::Guard;

  template <typename T>
  static void forward(const DeformPSRoIPoolGeometry& g, const T* input, const T* rois, const T* offset,
                      int64_t num_rois, T* output) {
    Launcher::launch(num_rois * g.output_dim * g.bins(), DeformPSRoIForwardOp<T>{g, input, rois, offset, output});
  }

  template <typename T>
  static void backward(const DeformPSRoIPoolGeometry& g, const T* grad_output, const T* input, const T* rois,
                       const T* offset, int64_t num_rois, T* grad_input, T* grad_offset) {
    if (at::globalContext().deterministicAlgorithms()) {
      Launcher::launch(g.batch * g.output_dim,
                       DeformPSRoIInputGradOwnerOp<T>{g, grad_output, rois, offset, num_rois, grad_input});
      if (!g.no_trans) {
        Launcher::launch(num_rois * g.num_classes,
                         DeformPSRoIOffsetGradOwnerOp<T>{g, grad_output, input, rois, offset, grad_offset});
      }
      return;
    }
    Launcher::launch(num_rois * g.output_dim * g.bins(),
                     DeformPSRoIBackwardOp<T>{g, grad_output, input, rois, offset, grad_input, grad_offset});
  }
};

template <typename Backend>
at::Tensor deform_psroi_pool_forward_impl(const at::Tensor& input_, const at::Tensor& rois_,
                                          const std::optional<at::Tensor>& offset_,
                                          const DeformPSRoIPoolParams& p) {
  const auto g = check_deform_psroi_pool_args(input_, rois_, offset_, p);
  const auto ctype = compute_type(input_.scalar_type());
  const at::Tensor input = input_.to(ctype).contiguous();
  const at::Tensor rois = rois_.to(ctype).contiguous();
  const at::Tensor offset = p.no_trans ? at::Tensor() : offset_->to(ctype).contiguous();
  const int64_t num_rois = rois.size(0);
  at::Tensor output = at::zeros({num_rois, p.output_dim, p.pooled_size, p.pooled_size}, input.options());
  if (num_rois > 0) {
    AT_DISPATCH_FLOATING_TYPES(ctype, "dcn_det::deform_psroi_pool", [&] {
      Backend::template forward<scalar_t>(g, input.const_data_ptr<scalar_t>(),
                                          rois.const_data_ptr<scalar_t>(),
                                          p.no_trans ? nullptr : offset.const_data_ptr<scalar_t>(),
                                          num_rois, output.mutable_data_ptr<scalar_t>());
    });
  }
  return output.to(input_.scalar_type());
}

template <typename Backend>
std::tuple<at::Tensor, at::Tensor> deform_psroi_pool_backward_impl(
    const at::Tensor& grad_output_, const at::Tensor& input_, const at::Tensor& rois_,
    const std::optional<at::Tensor>& offset_, const DeformPSRoIPoolParams& p) {
  const auto g = check_deform_psroi_pool_args(input_, rois_, offset_, p, &grad_output_);
  const auto dtype = input_.scalar_type();
  const auto ctype = compute_type(dtype);
  const at::Tensor input = input_.to(ctype).contiguous();
  const at::Tensor rois = rois_.to(ctype).contiguous();
  const at::Tensor grad_output = grad_output_.to(ctype).contiguous();
  const at::Tensor offset = p.no_trans ? at::Tensor() : offset_->to(ctype).contiguous();
  at::Tensor grad_input = at::zeros_like(input);
  // An offset that was passed but ignored (no_trans) gets a zero gradient.
  at::Tensor grad_offset = offset_.has_value()
                               ? at::zeros(offset_->sizes(), input.options())
                               : at::empty({0}, input.options());
  const int64_t num_rois = rois.size(0);
  if (num_rois > 0) {
    AT_DISPATCH_FLOATING_TYPES(ctype, "dcn_det::_deform_psroi_pool_backward", [&] {
      Backend::template backward<scalar_t>(
          g, grad_output.const_data_ptr<scalar_t>(), input.const_data_ptr<scalar_t>(),
          rois.const_data_ptr<scalar_t>(),
          p.no_trans ? nullptr : offset.const_data_ptr<scalar_t>(), num_rois,
          grad_input.mutable_data_ptr<scalar_t>(),
          p.no_trans ? nullptr : grad_offset.mutable_data_ptr<scalar_t>());
    });
  }
  return {grad_input.to(dtype), grad_offset.to(offset_.has_value() ? offset_->scalar_type() : dtype)};
}

// The kernels registered for a device: the schema's signature over the impls above.
template <typename Backend>
at::Tensor deform_psroi_pool_forward_kernel(const at::Tensor& input, const at::Tensor& rois,
                                            const std::optional<at::Tensor>& offset,
                                            double spatial_scale, int64_t output_dim,
                                            int64_t group_size, int64_t pooled_size,
                                            int64_t part_size, int64_t sample_per_part,
                                            double trans_std, bool no_trans) {
  const typename Backend::Guard guard(input.device());
  return deform_psroi_pool_forward_impl<Backend>(
      input, rois, offset,
      {spatial_scale, output_dim, group_size, pooled_size, part_size, sample_per_part, trans_std, no_trans});
}

template <typename Backend>
std::tuple<at::Tensor, at::Tensor> deform_psroi_pool_backward_kernel(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& rois,
    const std::optional<at::Tensor>& offset, double spatial_scale, int64_t output_dim,
    int64_t group_size, int64_t pooled_size, int64_t part_size, int64_t sample_per_part,
    double trans_std, bool no_trans) {
  const typename Backend::Guard guard(input.device());
  return deform_psroi_pool_backward_impl<Backend>(
      grad_output, input, rois, offset,
      {spatial_scale, output_dim, group_size, pooled_size, part_size, sample_per_part, trans_std, no_trans});
}

}  // namespace dcn_det
