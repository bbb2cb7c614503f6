// dcn_det::deform_conv2d — declarations shared by the schema file, the device
// kernels and the autograd wrapper.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <tuple>

namespace dcn_det {

struct DeformConv2dParams {
  int64_t stride_h, stride_w;
  int64_t pad_h, pad_w;
  int64_t dilation_h, dilation_w;
  int64_t groups;         // weight groups
  int64_t offset_groups;  // deformable groups
  int64_t border;         // sampling rule at the map's border: 0 "dcnv2", 1 "dcnv1" (common/bilinear.h)
};

// Validates the arguments of the forward op (and of the backward op when
// grad_output is given) and returns the output size. Raises ValueError naming
// the offending argument and the expected shape.
std::pair<int64_t, int64_t> check_deform_conv2d_args(
    const at::Tensor& input, const at::Tensor& offset, const at::Tensor& weight,
    const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& mask,
    const DeformConv2dParams& params, const at::Tensor* grad_output = nullptr);

// Calls through the dispatcher (used by the autograd wrapper).
at::Tensor deform_conv2d(const at::Tensor& input, const at::Tensor& offset,
                         const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                         const std::optional<at::Tensor>& mask, const DeformConv2dParams& p);

// (grad_input, grad_offset, grad_weight, grad_bias, grad_mask); grad_mask is an
// empty tensor when mask is None.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> deform_conv2d_backward(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& offset,
    const at::Tensor& weight, const std::optional<at::Tensor>& mask,
    const DeformConv2dParams& p);

}  // namespace dcn_det
