// Schema of dcn_det::psroi_pool (integer-bin PS-RoI pooling of the original R-FCN,
// MXNet contrib.PSROIPooling) and its backward, argument validation, and the thin
// dispatcher calls. Kernels: cpu/psroi_pool_kernel.cpp, cuda/psroi_pool_kernel.cu;
// gradient wiring: autograd/; fake (meta) kernels: dcn_det/ops/psroi_pool.py.
#include "psroi_pool.h"

#include <torch/library.h>

#include <cmath>

#include "host_utils.h"

namespace dcn_det {

PSRoIPoolGeometry check_psroi_pool_args(const at::Tensor& input, const at::Tensor& rois,
                                        const PSRoIPoolParams& p, const at::Tensor* grad_output) {
  const char* op = "psroi_pool";
  TORCH_CHECK_VALUE(input.dim() == 4, op, ": input must be 4-D [N, output_dim*group_size^2, H, W], got shape ",
                    shape_str(input));
  const auto dtype = input.scalar_type();
  TORCH_CHECK_VALUE(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kHalf || dtype == at::kBFloat16,
                    op, ": input must be float32, float64, float16 or bfloat16, got ", dtype);
  TORCH_CHECK_VALUE(p.output_dim >= 1, op, ": output_dim must be >= 1, got ", p.output_dim);
  TORCH_CHECK_VALUE(p.group_size >= 1, op, ": group_size must be >= 1, got ", p.group_size);
  TORCH_CHECK_VALUE(p.pooled_size >= 1, op, ": pooled_size must be >= 1, got ", p.pooled_size);
  TORCH_CHECK_VALUE(std::isfinite(p.spatial_scale) && p.spatial_scale > 0, op,
                    ": spatial_scale must be a positive finite number, got ", p.spatial_scale);
  const int64_t channels = p.output_dim * p.group_size * p.group_size;
  TORCH_CHECK_VALUE(input.size(1) == channels, op, ": input must have output_dim * group_size^2 = ", p.output_dim,
                    " * ", p.group_size, "^2 = ", channels, " channels [N, ", channels, ", H, W], got shape ",
                    shape_str(input));
  TORCH_CHECK_VALUE(rois.dim() == 2 && rois.size(1) == 5, op,
                    ": rois must have shape [R, 5] (batch_index, x1, y1, x2, y2), got ", shape_str(rois));
  TORCH_CHECK_VALUE(at::isFloatingType(rois.scalar_type()), op, ": rois must be a floating-point tensor, got ",
                    rois.scalar_type());
  TORCH_CHECK_VALUE(rois.device() == input.device(), op, ": rois must be on the same device as input (",
                    input.device(), "), got ", rois.device());
  const int64_t num_rois = rois.size(0);
  if (grad_output != nullptr) {
    TORCH_CHECK_VALUE(grad_output->dim() == 4 && grad_output->size(0) == num_rois &&
                          grad_output->size(1) == p.output_dim && grad_output->size(2) == p.pooled_size &&
                          grad_output->size(3) == p.pooled_size,
                      op, " backward: grad_output must have shape [", num_rois, ", ", p.output_dim, ", ",
                      p.pooled_size, ", ", p.pooled_size, "] (R, output_dim, pooled_size, pooled_size), got ",
                      shape_str(*grad_output));
    TORCH_CHECK_VALUE(grad_output->device() == input.device(), op,
                      " backward: grad_output must be on the same device as input (", input.device(), "), got ",
                      grad_output->device());
  }
  PSRoIPoolGeometry g;
  g.batch = input.size(0);
  g.channels = channels;
  g.height = input.size(2);
  g.width = input.size(3);
  g.output_dim = p.output_dim;
  g.group_size = p.group_size;
  g.pooled_size = p.pooled_size;
  g.spatial_scale = p.spatial_scale;
  return g;
}

at::Tensor psroi_pool(const at::Tensor& input, const at::Tensor& rois, const PSRoIPoolParams& p) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("dcn_det::psroi_pool", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double, int64_t, int64_t, int64_t)>();
  return op.call(input, rois, p.spatial_scale, p.output_dim, p.group_size, p.pooled_size);
}

at::Tensor psroi_pool_backward(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& rois,
                               const PSRoIPoolParams& p) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("dcn_det::_psroi_pool_backward", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, double, int64_t,
                                         int64_t, int64_t)>();
  return op.call(grad_output, input, rois, p.spatial_scale, p.output_dim, p.group_size, p.pooled_size);
}

TORCH_LIBRARY_FRAGMENT(dcn_det, m) {
  m.def("psroi_pool(Tensor input, Tensor rois, float spatial_scale, int output_dim, int group_size, "
        "int pooled_size) -> Tensor");
  m.def("_psroi_pool_backward(Tensor grad_output, Tensor input, Tensor rois, float spatial_scale, "
        "int output_dim, int group_size, int pooled_size) -> Tensor");
}

}  // namespace dcn_det
