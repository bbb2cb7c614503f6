// Autocast kernels of dcn_det::deform_conv2d (CPU and CUDA): the policy is in
// autocast_policy.h. Gradients flow back through the casts as usual.
#include <torch/library.h>

#include "../deform_conv2d.h"
#include "autocast_policy.h"

namespace dcn_det {
namespace {

template <c10::DeviceType kDevice>
at::Tensor deform_conv2d_autocast(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& weight,
                                  const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& mask,
                                  int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                                  int64_t dilation_h, int64_t dilation_w, int64_t groups, int64_t offset_groups,
                                  int64_t border) {
  using Policy = AutocastPolicy<kDevice>;
  c10::impl::ExcludeDispatchKeyGuard no_autocast(Policy::kKey);
  const DeformConv2dParams p{stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups, offset_groups, border};
  return deform_conv2d(Policy::cast(input), Policy::cast(offset), Policy::cast(weight), Policy::cast(bias),
                       Policy::cast(mask), p);
}

}  // namespace

TORCH_LIBRARY_IMPL(dcn_det, AutocastCPU, m) {
  m.impl("deform_conv2d", &deform_conv2d_autocast<c10::DeviceType::CPU>);
}

TORCH_LIBRARY_IMPL(dcn_det, AutocastCUDA, m) {
  m.impl("deform_conv2d", &deform_conv2d_autocast<c10::DeviceType::CUDA>);
}

}  // namespace dcn_det
