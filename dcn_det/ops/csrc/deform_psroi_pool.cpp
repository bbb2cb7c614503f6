// Schema of dcn_det::deform_psroi_pool and its backward, argument validation, and
// the thin dispatcher calls. Kernels: cpu/, cuda/; gradient wiring: autograd/;
// fake (meta) kernels: dcn_det/ops/deform_psroi_pool.py.
#include "deform_psroi_pool.h"

#include <torch/library.h>

#include <cmath>

#include "host_utils.h"

namespace dcn_det {

DeformPSRoIPoolGeometry check_deform_psroi_pool_args(const at::Tensor& input,
                                                     const at::Tensor& rois,
                                                     const std::optional<at::Tensor>& offset,
                                                     const DeformPSRoIPoolParams& p,
                                                     const at::Tensor* grad_output) {
  const char* op = "deform_psroi_pool";
  TORCH_CHECK_VALUE(input.dim() == 4, op, ": input must be 4-D [N, output_dim*group_size^2, H, W], got shape ",
                    shape_str(input));
  const auto dtype = input.scalar_type();
  TORCH_CHECK_VALUE(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kHalf ||
                        dtype == at::kBFloat16,
                    op, ": input must be float32, float64, float16 or bfloat16, got ", dtype);
  TORCH_CHECK_VALUE(p.output_dim >= 1, op, ": output_dim must be >= 1, got ", p.output_dim);
  TORCH_CHECK_VALUE(p.group_size >= 1, op, ": group_size must be >= 1, got ", p.group_size);
  TORCH_CHECK_VALUE(p.pooled_size >= 1, op, ": pooled_size must be >= 1, got ", p.pooled_size);
  TORCH_CHECK_VALUE(p.part_size >= 1, op, ": part_size must be >= 1 (0 means pooled_size), got ",
                    p.part_size);
  TORCH_CHECK_VALUE(p.sample_per_part >= 1, op, ": sample_per_part must be >= 1, got ",
                    p.sample_per_part);
  TORCH_CHECK_VALUE(std::isfinite(p.spatial_scale) && p.spatial_scale > 0, op,
                    ": spatial_scale must be a positive finite number, got ", p.spatial_scale);
  TORCH_CHECK_VALUE(std::isfinite(p.trans_std), op, ": trans_std must be finite, got ",
                    p.trans_std);
  const int64_t channels = p.output_dim * p.group_size * p.group_size;
  TORCH_CHECK_VALUE(input.size(1) == channels, op, ": input must have output_dim * group_size^2 = ",
                    p.output_dim, " * ", p.group_size, "^2 = ", channels,
                    " channels, got shape ", shape_str(input));

  TORCH_CHECK_VALUE(rois.dim() == 2 && rois.size(1) == 5, op,
                    ": rois must have shape [R, 5] (batch_index, x1, y1, x2, y2), got ",
                    shape_str(rois));
  TORCH_CHECK_VALUE(at::isFloatingType(rois.scalar_type()), op,
                    ": rois must be a floating-point tensor, got ", rois.scalar_type());
  TORCH_CHECK_VALUE(rois.device() == input.device(), op, ": rois must be on the same device as input (",
                    input.device(), "), got ", rois.device());
  const int64_t num_rois = rois.size(0);

  DeformPSRoIPoolGeometry g;
  g.batch = input.size(0);
  g.channels = channels;
  g.height = input.size(2);
  g.width = input.size(3);
  g.output_dim = p.output_dim;
  g.group_size = p.group_size;
  g.pooled_size = p.pooled_size;
  g.part_size = p.part_size;
  g.sample_per_part = p.sample_per_part;
  g.spatial_scale = p.spatial_scale;
  g.trans_std = p.trans_std;
  g.no_trans = p.no_trans;
  g.num_classes = 1;
  g.channels_each_class = p.output_dim;

  if (!p.no_trans) {
    TORCH_CHECK_VALUE(offset.has_value(), op, ": offset is required unless no_trans=True");
    const at::Tensor& off = *offset;
    TORCH_CHECK_VALUE(off.device() == input.device() && off.scalar_type() == dtype, op,
                      ": offset must have input's device and dtype (", input.device(), ", ", dtype,
                      "), got ", off.device(), ", ", off.scalar_type());
    TORCH_CHECK_VALUE(off.dim() == 4 && off.size(0) == num_rois && off.size(1) >= 2 &&
                          off.size(1) % 2 == 0 && off.size(2) == p.part_size &&
                          off.size(3) == p.part_size,
                      op, ": offset must have shape [", num_rois, ", 2*num_classes, ", p.part_size,
                      ", ", p.part_size, "] (R, 2*num_classes, part_size, part_size), got ",
                      shape_str(off));
    g.num_classes = off.size(1) / 2;
    TORCH_CHECK_VALUE(p.output_dim % g.num_classes == 0, op, ": offset has ", g.num_classes,
                      " classes (", off.size(1), " channels), which must divide output_dim (",
                      p.output_dim, ")");
    g.channels_each_class = p.output_dim / g.num_classes;
  }
  if (num_rois > 0) {
    // One host sync for all value checks; every kernel still guards the batch index.
    const at::Tensor r = rois.to(at::kDouble);
    const at::Tensor index = r.select(1, 0);
    const at::Tensor flags =
        at::stack({at::isfinite(r).all().logical_not(),
                   (index != index.floor()).logical_or(index < 0).logical_or(index >= g.batch).any()})
            .to(at::kCPU);
    const bool* bad = flags.const_data_ptr<bool>();
    TORCH_CHECK_VALUE(!bad[0], op, ": rois contain NaN or infinite values");
    TORCH_CHECK_VALUE(!bad[1], op, ": rois[:, 0] must hold integer batch indices in [0, ",
                      g.batch, ") (the input batch size)");
  }
  if (grad_output != nullptr) {
    TORCH_CHECK_VALUE(grad_output->dim() == 4 && grad_output->size(0) == num_rois &&
                          grad_output->size(1) == p.output_dim &&
                          grad_output->size(2) == p.pooled_size &&
                          grad_output->size(3) == p.pooled_size,
                      op, " backward: grad_output must have shape [", num_rois, ", ", p.output_dim,
                      ", ", p.pooled_size, ", ", p.pooled_size, "], got ", shape_str(*grad_output));
  }
  return g;
}

at::Tensor deform_psroi_pool(const at::Tensor& input, const at::Tensor& rois,
                             const std::optional<at::Tensor>& offset,
                             const DeformPSRoIPoolParams& p) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("dcn_det::deform_psroi_pool", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&,
                                         const std::optional<at::Tensor>&, double, int64_t,
                                         int64_t, int64_t, int64_t, int64_t, double, bool)>();
  return op.call(input, rois, offset, p.spatial_scale, p.output_dim, p.group_size, p.pooled_size,
                 p.part_size, p.sample_per_part, p.trans_std, p.no_trans);
}

std::tuple<at::Tensor, at::Tensor> deform_psroi_pool_backward(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& rois,
    const std::optional<at::Tensor>& offset, const DeformPSRoIPoolParams& p) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("dcn_det::_deform_psroi_pool_backward", "")
          .typed<std::tuple<at::Tensor, at::Tensor>(
              const at::Tensor&, const at::Tensor&, const at::Tensor&,
              const std::optional<at::Tensor>&, double, int64_t, int64_t, int64_t, int64_t,
              int64_t, double, bool)>();
  return op.call(grad_output, input, rois, offset, p.spatial_scale, p.output_dim, p.group_size,
                 p.pooled_size, p.part_size, p.sample_per_part, p.trans_std, p.no_trans);
}

TORCH_LIBRARY_FRAGMENT(dcn_det, m) {
  m.def(
      "deform_psroi_pool(Tensor input, Tensor rois, Tensor? offset, float spatial_scale, "
      "int output_dim, int group_size, int pooled_size, int part_size, int sample_per_part, "
      "float trans_std, bool no_trans) -> Tensor");
  m.def(
      "_deform_psroi_pool_backward(Tensor grad_output, Tensor input, Tensor rois, Tensor? offset, "
      "float spatial_scale, int output_dim, int group_size, int pooled_size, int part_size, "
      "int sample_per_part, float trans_std, bool no_trans) "
      "-> (Tensor grad_input, Tensor grad_offset)");
}

}  // namespace dcn_det
