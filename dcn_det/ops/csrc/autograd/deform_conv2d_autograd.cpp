// Autograd kernel of dcn_det::deform_conv2d: forward redispatches below the
// autograd key; backward calls dcn_det::_deform_conv2d_backward, which returns
// the gradients of input, offset, weight, bias and mask in one pass.
// Double backward is not implemented and says so.
#include <torch/autograd.h>
#include <torch/library.h>

#include "../deform_conv2d.h"

namespace dcn_det {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;

class DeformConv2dFunction : public torch::autograd::Function<DeformConv2dFunction> {
 public:
  static Variable forward(AutogradContext* ctx, const Variable& input, const Variable& offset,
                          const Variable& weight, const std::optional<Variable>& bias,
                          const std::optional<Variable>& mask, int64_t stride_h,
                          int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dilation_h,
                          int64_t dilation_w, int64_t groups, int64_t offset_groups,
                          int64_t border) {
    at::AutoDispatchBelowADInplaceOrView guard;
    const DeformConv2dParams p{stride_h, stride_w, pad_h, pad_w,
                               dilation_h, dilation_w, groups, offset_groups, border};
    at::Tensor output = deform_conv2d(input, offset, weight, bias, mask, p);
    ctx->save_for_backward({input, offset, weight, mask.value_or(at::Tensor())});
    ctx->saved_data["has_bias"] = bias.has_value();
    ctx->saved_data["has_mask"] = mask.has_value();
    ctx->saved_data["params"] = std::vector<int64_t>{stride_h, stride_w, pad_h, pad_w,
                                                     dilation_h, dilation_w, groups, offset_groups,
                                                     border};
    return output;
  }

  static variable_list backward(AutogradContext* ctx, const variable_list& grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    const bool has_mask = ctx->saved_data["has_mask"].toBool();
    const auto v = ctx->saved_data["params"].toIntVector();
    const DeformConv2dParams p{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]};
    const std::optional<at::Tensor> mask =
        has_mask ? std::optional<at::Tensor>(saved[3]) : std::nullopt;
    auto [grad_input, grad_offset, grad_weight, grad_bias, grad_mask] =
        deform_conv2d_backward(grad_outputs[0], saved[0], saved[1], saved[2], mask, p);
    const Variable none;
    return {grad_input, grad_offset, grad_weight,
            has_bias ? grad_bias : none, has_mask ? grad_mask : none,
            none, none, none, none, none, none, none, none, none};
  }
};

// The backward op is not differentiable (no double backward).
class DeformConv2dBackwardFunction
    : public torch::autograd::Function<DeformConv2dBackwardFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const Variable& grad_output,
                               const Variable& input, const Variable& offset,
                               const Variable& weight, const std::optional<Variable>& mask,
                               int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                               int64_t dilation_h, int64_t dilation_w, int64_t groups,
                               int64_t offset_groups, int64_t border) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [a, b, c, d, e] = deform_conv2d_backward(
        grad_output, input, offset, weight, mask,
        {stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups, offset_groups, border});
    return {a, b, c, d, e};
  }

  static variable_list backward(AutogradContext*, const variable_list&) {
    TORCH_CHECK(false, "dcn_det::deform_conv2d: double backward is not supported");
  }
};

at::Tensor deform_conv2d_autograd(const at::Tensor& input, const at::Tensor& offset,
                                  const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                                  const std::optional<at::Tensor>& mask, int64_t stride_h,
                                  int64_t stride_w, int64_t pad_h, int64_t pad_w,
                                  int64_t dilation_h, int64_t dilation_w, int64_t groups,
                                  int64_t offset_groups, int64_t border) {
  return DeformConv2dFunction::apply(input, offset, weight, bias, mask, stride_h, stride_w, pad_h,
                                     pad_w, dilation_h, dilation_w, groups, offset_groups, border);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
deform_conv2d_backward_autograd(const at::Tensor& grad_output, const at::Tensor& input,
                                const at::Tensor& offset, const at::Tensor& weight,
                                const std::optional<at::Tensor>& mask, int64_t stride_h,
                                int64_t stride_w, int64_t pad_h, int64_t pad_w,
                                int64_t dilation_h, int64_t dilation_w, int64_t groups,
                                int64_t offset_groups, int64_t border) {
  auto r = DeformConv2dBackwardFunction::apply(grad_output, input, offset, weight, mask, stride_h,
                                               stride_w, pad_h, pad_w, dilation_h, dilation_w,
                                               groups, offset_groups, border);
  return {r[0], r[1], r[2], r[3], r[4]};
}

}  // namespace

TORCH_LIBRARY_IMPL(dcn_det, Autograd, m) {
  m.impl("deform_conv2d", &deform_conv2d_autograd);
  m.impl("_deform_conv2d_backward", &deform_conv2d_backward_autograd);
}

}  // namespace dcn_det
