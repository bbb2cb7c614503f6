// Host side of integer-bin PS-RoI pooling shared by the CPU and device kernels:
// validation, dtype handling (float16/bfloat16 computed in float32), buffers.
// `Backend` supplies
//   forward<T>(geom, input, rois, num_rois, output)
//   backward<T>(geom, grad_output, rois, num_rois, grad_input)   (grad_input zeroed)
// and a `Guard` type constructed on the input's device. The CPU backend
// (cpu/psroi_pool_kernel.cpp) is deterministic. The device backend below launches the
// *Op structs of psroi_pool_elements.h through a Launcher (CUDA: cuda/cuda_launch.h;
// the host device path: cpu/device_path.h); its backward scatters with atomic adds and
// switches to the atomic-free owner op under torch.use_deterministic_algorithms(True).
#pragma once

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Dispatch.h>

#include "../host_utils.h"
#include "../psroi_pool.h"

namespace dcn_det {

template <typename Launcher>
struct PSRoIPoolDeviceBackend {
  using Guard = typename Launcher::Guard;

  template <typename T>
  static void forward(const PSRoIPoolGeometry& g, const T* input, const T* rois, int64_t num_rois, T* output) {
    Launcher::launch(num_rois * g.output_dim * g.bins(), PSRoIPoolForwardOp<T>{g, input, rois, output});
  }

  template <typename T>
  static void backward(const PSRoIPoolGeometry& g, const T* grad_output, const T* rois, int64_t num_rois,
                       T* grad_input) {
    if (at::globalContext().deterministicAlgorithms()) {
      Launcher::launch(g.batch * g.channels, PSRoIPoolInputGradOwnerOp<T>{g, grad_output, rois, num_rois, grad_input});
      return;
    }
    Launcher::launch(num_rois * g.output_dim * g.bins(), PSRoIPoolBackwardOp<T>{g, grad_output, rois, grad_input});
  }
};

template <typename Backend>
at::Tensor psroi_pool_forward_impl(const at::Tensor& input_, const at::Tensor& rois_, const PSRoIPoolParams& p) {
  const auto g = check_psroi_pool_args(input_, rois_, p);
  const auto ctype = compute_type(input_.scalar_type());
  const int64_t num_rois = rois_.size(0);
  at::Tensor output = at::zeros({num_rois, p.output_dim, p.pooled_size, p.pooled_size}, input_.options().dtype(ctype));
  if (num_rois > 0 && input_.numel() > 0) {
    const at::Tensor input = input_.to(ctype).contiguous();
    const at::Tensor rois = rois_.to(ctype).contiguous();
    AT_DISPATCH_FLOATING_TYPES(ctype, "dcn_det::psroi_pool", [&] {
      Backend::template forward<scalar_t>(g, input.const_data_ptr<scalar_t>(), rois.const_data_ptr<scalar_t>(),
                                          num_rois, output.mutable_data_ptr<scalar_t>());
    });
  }
  return output.to(input_.scalar_type());
}

template <typename Backend>
at::Tensor psroi_pool_backward_impl(const at::Tensor& grad_output_, const at::Tensor& input_,
                                    const at::Tensor& rois_, const PSRoIPoolParams& p) {
  const auto g = check_psroi_pool_args(input_, rois_, p, &grad_output_);
  const auto dtype = input_.scalar_type();
  const auto ctype = compute_type(dtype);
  at::Tensor grad_input = at::zeros(input_.sizes(), input_.options().dtype(ctype));
  const int64_t num_rois = rois_.size(0);
  if (num_rois > 0 && input_.numel() > 0) {
    const at::Tensor rois = rois_.to(ctype).contiguous();
    const at::Tensor grad_output = grad_output_.to(ctype).contiguous();
    AT_DISPATCH_FLOATING_TYPES(ctype, "dcn_det::_psroi_pool_backward", [&] {
      Backend::template backward<scalar_t>(g, grad_output.const_data_ptr<scalar_t>(), rois.const_data_ptr<scalar_t>(),
                                           num_rois, grad_input.mutable_data_ptr<scalar_t>());
    });
  }
  return grad_input.to(dtype);
}

// The kernels registered for a device: the schema's signature over the impls above.
template <typename Backend>
at::Tensor psroi_pool_forward_kernel(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                                     int64_t output_dim, int64_t group_size, int64_t pooled_size) {
  const typename Backend::Guard guard(input.device());
  return psroi_pool_forward_impl<Backend>(input, rois, {spatial_scale, output_dim, group_size, pooled_size});
}

template <typename Backend>
at::Tensor psroi_pool_backward_kernel(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& rois,
                                      double spatial_scale, int64_t output_dim, int64_t group_size,
                                      int64_t pooled_size) {
  const typename Backend::Guard guard(input.device());
  return psroi_pool_backward_impl<Backend>(grad_output, input, rois,
                                           {spatial_scale, output_dim, group_size, pooled_size});
}

}  // namespace dcn_det
