// Autograd kernel of dcn_det::deform_psroi_pool: gradients for input and offset,
// none for rois (box coordinates are not learned through the pooling, as in the
// original). Double backward is not implemented and says so.
#include <torch/autograd.h>
#include <torch/library.h>

#include "../deform_psroi_pool.h"

namespace dcn_det {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;

DeformPSRoIPoolParams params_from(const c10::IValue& v, bool no_trans) {
  const auto d = v.toDoubleVector();
  return {d[0],
          static_cast<int64_t>(d[1]),
          static_cast<int64_t>(d[2]),
          static_cast<int64_t>(d[3]),
          static_cast<int64_t>(d[4]),
          static_cast<int64_t>(d[5]),
          d[6],
          no_trans};
}

class DeformPSRoIPoolFunction : public torch::autograd::Function<DeformPSRoIPoolFunction> {
 public:
  static Variable forward(AutogradContext* ctx, const Variable& input, const Variable& rois,
                          const std::optional<Variable>& offset, double spatial_scale,
                          int64_t output_dim, int64_t group_size, int64_t pooled_size,
                          int64_t part_size, int64_t sample_per_part, double trans_std,
                          bool no_trans) {
    at::AutoDispatchBelowADInplaceOrView guard;
    const DeformPSRoIPoolParams p{spatial_scale, output_dim, group_size, pooled_size,
                                  part_size, sample_per_part, trans_std, no_trans};
    at::Tensor output = deform_psroi_pool(input, rois, offset, p);
    ctx->save_for_backward({input, rois, offset.value_or(at::Tensor())});
    ctx->saved_data["has_offset"] = offset.has_value();
    ctx->saved_data["no_trans"] = no_trans;
    // Exact in double: the ints are small.
    ctx->saved_data["params"] = std::vector<double>{
        spatial_scale, double(output_dim), double(group_size), double(pooled_size),
        double(part_size), double(sample_per_part), trans_std};
    return output;
  }

  static variable_list backward(AutogradContext* ctx, const variable_list& grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const bool has_offset = ctx->saved_data["has_offset"].toBool();
    const auto p = params_from(ctx->saved_data["params"], ctx->saved_data["no_trans"].toBool());
    const std::optional<at::Tensor> offset =
        has_offset ? std::optional<at::Tensor>(saved[2]) : std::nullopt;
    auto [grad_input, grad_offset] =
        deform_psroi_pool_backward(grad_outputs[0], saved[0], saved[1], offset, p);
    const Variable none;
    return {grad_input, none, has_offset ? grad_offset : none,
            none, none, none, none, none, none, none, none};
  }
};

class DeformPSRoIPoolBackwardFunction
    : public torch::autograd::Function<DeformPSRoIPoolBackwardFunction> {
 public:
  static variable_list forward(AutogradContext*, const Variable& grad_output,
                               const Variable& input, const Variable& rois,
                               const std::optional<Variable>& offset, double spatial_scale,
                               int64_t output_dim, int64_t group_size, int64_t pooled_size,
                               int64_t part_size, int64_t sample_per_part, double trans_std,
                               bool no_trans) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [a, b] = deform_psroi_pool_backward(
        grad_output, input, rois, offset,
        {spatial_scale, output_dim, group_size, pooled_size, part_size, sample_per_part,
         trans_std, no_trans});
    return {a, b};
  }

  static variable_list backward(AutogradContext*, const variable_list&) {
    TORCH_CHECK(false, "dcn_det::deform_psroi_pool: double backward is not supported");
  }
};

at::Tensor deform_psroi_pool_autograd(const at::Tensor& input, const at::Tensor& rois,
                                      const std::optional<at::Tensor>& offset,
                                      double spatial_scale, int64_t output_dim,
                                      int64_t group_size, int64_t pooled_size, int64_t part_size,
                                      int64_t sample_per_part, double trans_std, bool no_trans) {
  return DeformPSRoIPoolFunction::apply(input, rois, offset, spatial_scale, output_dim,
                                        group_size, pooled_size, part_size, sample_per_part,
                                        trans_std, no_trans);
}

std::tuple<at::Tensor, at::Tensor> deform_psroi_pool_backward_autograd(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& rois,
    const std::optional<at::Tensor>& offset, double spatial_scale, int64_t output_dim,
    int64_t group_size, int64_t pooled_size, int64_t part_size, int64_t sample_per_part,
    double trans_std, bool no_trans) {
  auto r = DeformPSRoIPoolBackwardFunction::apply(grad_output, input, rois, offset,
                                                  spatial_scale, output_dim, group_size,
                                                  pooled_size, part_size, sample_per_part,
                                                  trans_std, no_trans);
  return {r[0], r[1]};
}

}  // namespace

TORCH_LIBRARY_IMPL(dcn_det, Autograd, m) {
  m.impl("deform_psroi_pool", &deform_psroi_pool_autograd);
  m.impl("_deform_psroi_pool_backward", &deform_psroi_pool_backward_autograd);
}

}  // namespace dcn_det
