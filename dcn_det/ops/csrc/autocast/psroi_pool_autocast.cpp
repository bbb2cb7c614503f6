// Autocast kernels of dcn_det::psroi_pool (CPU and CUDA): the input takes the autocast
// dtype, the RoIs keep theirs (autocast_policy.h).
#include <torch/library.h>

#include "../psroi_pool.h"
#include "autocast_policy.h"

namespace dcn_det {
namespace {

template <c10::DeviceType kDevice>
at::Tensor psroi_pool_autocast(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                               int64_t output_dim, int64_t group_size, int64_t pooled_size) {
  using Policy = AutocastPolicy<kDevice>;
  c10::impl::ExcludeDispatchKeyGuard no_autocast(Policy::kKey);
  return psroi_pool(Policy::cast(input), rois, {spatial_scale, output_dim, group_size, pooled_size});
}

}  // namespace

TORCH_LIBRARY_IMPL(dcn_det, AutocastCPU, m) {
  m.impl("psroi_pool", &psroi_pool_autocast<c10::DeviceType::CPU>);
}

TORCH_LIBRARY_IMPL(dcn_det, AutocastCUDA, m) {
  m.impl("psroi_pool", &psroi_pool_autocast<c10::DeviceType::CUDA>);
}

}  // namespace dcn_det
