// dcn_det::deform_psroi_pool — declarations shared by the schema file, the device
// kernels and the autograd wrapper.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <tuple>

#include "common/deform_psroi_pool_elements.h"

namespace dcn_det {

struct DeformPSRoIPoolParams {
  double spatial_scale;
  int64_t output_dim, group_size, pooled_size, part_size, sample_per_part;
  double trans_std;
  bool no_trans;
};

// Validates the arguments (values of rois included) and returns the geometry.
// Raises ValueError naming the offending argument.
DeformPSRoIPoolGeometry check_deform_psroi_pool_args(const at::Tensor& input,
                                                     const at::Tensor& rois,
                                                     const std::optional<at::Tensor>& offset,
                                                     const DeformPSRoIPoolParams& p,
                                                     const at::Tensor* grad_output = nullptr);

// Calls through the dispatcher (used by the autograd wrapper).
at::Tensor deform_psroi_pool(const at::Tensor& input, const at::Tensor& rois,
                             const std::optional<at::Tensor>& offset,
                             const DeformPSRoIPoolParams& p);

// (grad_input, grad_offset); grad_offset is empty when offset is None.
std::tuple<at::Tensor, at::Tensor> deform_psroi_pool_backward(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& rois,
    const std::optional<at::Tensor>& offset, const DeformPSRoIPoolParams& p);

}  // namespace dcn_det
