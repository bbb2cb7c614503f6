// Autograd kernel of dcn_det::psroi_pool: the gradient of the input (the exact
// gradient of the mean over each bin), none for rois (integer bins: the output is
// piecewise constant in the box coordinates, and the original gives them none).
// Double backward is not implemented and says so.
#include <torch/autograd.h>
#include <torch/library.h>

#include "../psroi_pool.h"

namespace dcn_det {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;

class PSRoIPoolFunction : public torch::autograd::Function<PSRoIPoolFunction> {
 public:
  static Variable forward(AutogradContext* ctx, const Variable& input, const Variable& rois, double spatial_scale,
                          int64_t output_dim, int64_t group_size, int64_t pooled_size) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor output = psroi_pool(input, rois, {spatial_scale, output_dim, group_size, pooled_size});
    ctx->save_for_backward({input, rois});
    ctx->saved_data["spatial_scale"] = spatial_scale;
    ctx->saved_data["output_dim"] = output_dim;
    ctx->saved_data["group_size"] = group_size;
    ctx->saved_data["pooled_size"] = pooled_size;
    return output;
  }

  static variable_list backward(AutogradContext* ctx, const variable_list& grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const PSRoIPoolParams p{ctx->saved_data["spatial_scale"].toDouble(), ctx->saved_data["output_dim"].toInt(),
                            ctx->saved_data["group_size"].toInt(), ctx->saved_data["pooled_size"].toInt()};
    const Variable none;
    return {psroi_pool_backward(grad_outputs[0], saved[0], saved[1], p), none, none, none, none, none};
  }
};

class PSRoIPoolBackwardFunction : public torch::autograd::Function<PSRoIPoolBackwardFunction> {
 public:
  static Variable forward(AutogradContext*, const Variable& grad_output, const Variable& input, const Variable& rois,
                          double spatial_scale, int64_t output_dim, int64_t group_size, int64_t pooled_size) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return psroi_pool_backward(grad_output, input, rois, {spatial_scale, output_dim, group_size, pooled_size});
  }

  static variable_list backward(AutogradContext*, const variable_list&) {
    TORCH_CHECK(false, "dcn_det::psroi_pool: double backward is not supported");
  }
};

at::Tensor psroi_pool_autograd(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                               int64_t output_dim, int64_t group_size, int64_t pooled_size) {
  return PSRoIPoolFunction::apply(input, rois, spatial_scale, output_dim, group_size, pooled_size);
}

at::Tensor psroi_pool_backward_autograd(const at::Tensor& grad_output, const at::Tensor& input,
                                        const at::Tensor& rois, double spatial_scale, int64_t output_dim,
                                        int64_t group_size, int64_t pooled_size) {
  return PSRoIPoolBackwardFunction::apply(grad_output, input, rois, spatial_scale, output_dim, group_size,
                                          pooled_size);
}

}  // namespace

TORCH_LIBRARY_IMPL(dcn_det, Autograd, m) {
  m.impl("psroi_pool", &psroi_pool_autograd);
  m.impl("_psroi_pool_backward", &psroi_pool_backward_autograd);
}

}  // namespace dcn_det
