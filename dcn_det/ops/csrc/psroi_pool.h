// dcn_det::psroi_pool (integer-bin position-sensitive RoI pooling, MXNet
// contrib.PSROIPooling) — declarations shared by the schema file, the kernels and the
// autograd wrapper.
#pragma once

#include <ATen/ATen.h>

#include "common/psroi_pool_elements.h"

namespace dcn_det {

struct PSRoIPoolParams {
  double spatial_scale;
  int64_t output_dim, group_size, pooled_size;
};

// Validates the arguments and returns the geometry. Raises ValueError naming the
// offending argument and the expected shape. The values of rois are not checked (no
// host sync): a RoI whose batch index is outside [0, N) pools zeros, and non-finite
// coordinates give empty bins (zeros), see common/psroi_pool_elements.h.
PSRoIPoolGeometry check_psroi_pool_args(const at::Tensor& input, const at::Tensor& rois,
                                        const PSRoIPoolParams& p, const at::Tensor* grad_output = nullptr);

// Calls through the dispatcher (used by the autograd and autocast wrappers).
at::Tensor psroi_pool(const at::Tensor& input, const at::Tensor& rois, const PSRoIPoolParams& p);

// grad_input; input is needed only for its shape, dtype and device.
at::Tensor psroi_pool_backward(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& rois,
                               const PSRoIPoolParams& p);

}  // namespace dcn_det
