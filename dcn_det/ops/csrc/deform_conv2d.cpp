// Schema of dcn_det::deform_conv2d and its backward, argument validation, and
// the thin dispatcher calls. Kernels: cpu/, cuda/; gradient wiring: autograd/;
// fake (meta) kernels: dcn_det/ops/deform_conv.py.
#include "deform_conv2d.h"

#include <torch/library.h>

#include "common/bilinear.h"
#include "host_utils.h"

namespace dcn_det {

namespace {

void check_same_device_dtype(const at::Tensor& input, const at::Tensor& other, const char* name) {
  TORCH_CHECK_VALUE(other.device() == input.device(), "deform_conv2d: ", name,
                    " must be on the same device as input (", input.device(), "), got ",
                    other.device());
  TORCH_CHECK_VALUE(other.scalar_type() == input.scalar_type(), "deform_conv2d: ", name,
                    " must have the same dtype as input (", input.scalar_type(), "), got ",
                    other.scalar_type());
}

}  // namespace

std::pair<int64_t, int64_t> check_deform_conv2d_args(
    const at::Tensor& input, const at::Tensor& offset, const at::Tensor& weight,
    const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& mask,
    const DeformConv2dParams& p, const at::Tensor* grad_output) {
  TORCH_CHECK_VALUE(input.dim() == 4, "deform_conv2d: input must be 4-D [N, C, H, W], got shape ",
                    shape_str(input));
  TORCH_CHECK_VALUE(offset.dim() == 4,
                    "deform_conv2d: offset must be 4-D [N, 2*offset_groups*kh*kw, out_h, out_w], "
                    "got shape ", shape_str(offset));
  TORCH_CHECK_VALUE(weight.dim() == 4,
                    "deform_conv2d: weight must be 4-D [out_channels, C/groups, kh, kw], got shape ",
                    shape_str(weight));
  const auto dtype = input.scalar_type();
  TORCH_CHECK_VALUE(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kHalf ||
                        dtype == at::kBFloat16,
                    "deform_conv2d: input must be float32, float64, float16 or bfloat16, got ",
                    dtype);
  check_same_device_dtype(input, offset, "offset");
  check_same_device_dtype(input, weight, "weight");

  TORCH_CHECK_VALUE(p.stride_h >= 1 && p.stride_w >= 1, "deform_conv2d: stride must be >= 1, got (",
                    p.stride_h, ", ", p.stride_w, ")");
  TORCH_CHECK_VALUE(p.pad_h >= 0 && p.pad_w >= 0, "deform_conv2d: padding must be >= 0, got (",
                    p.pad_h, ", ", p.pad_w, ")");
  TORCH_CHECK_VALUE(p.dilation_h >= 1 && p.dilation_w >= 1,
                    "deform_conv2d: dilation must be >= 1, got (", p.dilation_h, ", ",
                    p.dilation_w, ")");

  const int64_t n = input.size(0), c = input.size(1), h = input.size(2), w = input.size(3);
  const int64_t co = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  TORCH_CHECK_VALUE(kh >= 1 && kw >= 1 && co >= 1 && weight.size(1) >= 1,
                    "deform_conv2d: weight must have non-zero sizes, got shape ", shape_str(weight));
  TORCH_CHECK_VALUE(p.groups >= 1 && c % p.groups == 0 && weight.size(1) * p.groups == c,
                    "deform_conv2d: input channels (", c, ") must equal weight.shape[1] (",
                    weight.size(1), ") times groups (", p.groups, ")");
  TORCH_CHECK_VALUE(co % p.groups == 0, "deform_conv2d: weight.shape[0] (", co,
                    ") must be divisible by groups (", p.groups, ")");
  TORCH_CHECK_VALUE(p.offset_groups >= 1 && c % p.offset_groups == 0,
                    "deform_conv2d: input channels (", c,
                    ") must be divisible by the number of offset groups (", p.offset_groups, ")");
  TORCH_CHECK_VALUE(p.border == kBorderDcnv2 || p.border == kBorderDcnv1,
                    "deform_conv2d: border must be 0 (\"dcnv2\") or 1 (\"dcnv1\"), got ", p.border);

  const int64_t out_h = (h + 2 * p.pad_h - p.dilation_h * (kh - 1) - 1) / p.stride_h + 1;
  const int64_t out_w = (w + 2 * p.pad_w - p.dilation_w * (kw - 1) - 1) / p.stride_w + 1;
  TORCH_CHECK_VALUE(h + 2 * p.pad_h - p.dilation_h * (kh - 1) - 1 >= 0 &&
                        w + 2 * p.pad_w - p.dilation_w * (kw - 1) - 1 >= 0,
                    "deform_conv2d: input spatial size (", h, ", ", w,
                    ") with padding is smaller than the dilated kernel (", kh, ", ", kw, ")");

  const int64_t offset_channels = 2 * p.offset_groups * kh * kw;
  TORCH_CHECK_VALUE(offset.size(0) == n && offset.size(1) == offset_channels &&
                        offset.size(2) == out_h && offset.size(3) == out_w,
                    "deform_conv2d: offset must have shape [", n, ", ", offset_channels, ", ",
                    out_h, ", ", out_w, "] (N, 2*offset_groups*kh*kw, out_h, out_w), got ",
                    shape_str(offset));
  if (mask.has_value()) {
    const at::Tensor& m = *mask;
    check_same_device_dtype(input, m, "mask");
    TORCH_CHECK_VALUE(m.dim() == 4 && m.size(0) == n && m.size(1) == p.offset_groups * kh * kw &&
                          m.size(2) == out_h && m.size(3) == out_w,
                      "deform_conv2d: mask must have shape [", n, ", ", p.offset_groups * kh * kw,
                      ", ", out_h, ", ", out_w, "] (N, offset_groups*kh*kw, out_h, out_w), got ",
                      shape_str(m));
  }
  if (bias.has_value()) {
    check_same_device_dtype(input, *bias, "bias");
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == co, "deform_conv2d: bias must have shape [",
                      co, "] (out_channels), got ", shape_str(*bias));
  }
  if (grad_output != nullptr) {
    check_same_device_dtype(input, *grad_output, "grad_output");
    TORCH_CHECK_VALUE(grad_output->dim() == 4 && grad_output->size(0) == n &&
                          grad_output->size(1) == co && grad_output->size(2) == out_h &&
                          grad_output->size(3) == out_w,
                      "deform_conv2d backward: grad_output must have shape [", n, ", ", co, ", ",
                      out_h, ", ", out_w, "], got ", shape_str(*grad_output));
  }
  return {out_h, out_w};
}

at::Tensor deform_conv2d(const at::Tensor& input, const at::Tensor& offset,
                         const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                         const std::optional<at::Tensor>& mask, const DeformConv2dParams& p) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("dcn_det::deform_conv2d", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const std::optional<at::Tensor>&,
                                         const std::optional<at::Tensor>&, int64_t, int64_t,
                                         int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                         int64_t)>();
  return op.call(input, offset, weight, bias, mask, p.stride_h, p.stride_w, p.pad_h, p.pad_w,
                 p.dilation_h, p.dilation_w, p.groups, p.offset_groups, p.border);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> deform_conv2d_backward(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& offset,
    const at::Tensor& weight, const std::optional<at::Tensor>& mask,
    const DeformConv2dParams& p) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("dcn_det::_deform_conv2d_backward", "")
          .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
              const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
              const std::optional<at::Tensor>&, int64_t, int64_t, int64_t, int64_t, int64_t,
              int64_t, int64_t, int64_t, int64_t)>();
  return op.call(grad_output, input, offset, weight, mask, p.stride_h, p.stride_w, p.pad_h,
                 p.pad_w, p.dilation_h, p.dilation_w, p.groups, p.offset_groups, p.border);
}

TORCH_LIBRARY_FRAGMENT(dcn_det, m) {
  m.def(
      "deform_conv2d(Tensor input, Tensor offset, Tensor weight, Tensor? bias, Tensor? mask, "
      "int stride_h, int stride_w, int pad_h, int pad_w, int dilation_h, int dilation_w, "
      "int groups, int offset_groups, int border=0) -> Tensor");
  m.def(
      "_deform_conv2d_backward(Tensor grad_output, Tensor input, Tensor offset, Tensor weight, "
      "Tensor? mask, int stride_h, int stride_w, int pad_h, int pad_w, int dilation_h, "
      "int dilation_w, int groups, int offset_groups, int border=0) "
      "-> (Tensor grad_input, Tensor grad_offset, Tensor grad_weight, Tensor grad_bias, "
      "Tensor grad_mask)");
}

}  // namespace dcn_det
