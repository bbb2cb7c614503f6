// Autocast kernels of dcn_det::deform_psroi_pool (CPU and CUDA): input and offset
// take the autocast dtype, the RoIs keep theirs (autocast_policy.h).
#include <torch/library.h>

#include "../deform_psroi_pool.h"
#include "autocast_policy.h"

namespace dcn_det {
namespace {

template <c10::DeviceType kDevice>
at::Tensor deform_psroi_pool_autocast(const at::Tensor& input, const at::Tensor& rois,
                                      const std::optional<at::Tensor>& offset, double spatial_scale,
                                      int64_t output_dim, int64_t group_size, int64_t pooled_size,
                                      int64_t part_size, int64_t sample_per_part, double trans_std, bool no_trans) {
  using Policy = AutocastPolicy<kDevice>;
  c10::impl::ExcludeDispatchKeyGuard no_autocast(Policy::kKey);
  const DeformPSRoIPoolParams p{spatial_scale, output_dim, group_size, pooled_size,
                                part_size,     sample_per_part, trans_std, no_trans};
  return deform_psroi_pool(Policy::cast(input), rois, Policy::cast(offset), p);
}

}  // namespace

TORCH_LIBRARY_IMPL(dcn_det, AutocastCPU, m) {
  m.impl("deform_psroi_pool", &deform_psroi_pool_autocast<c10::DeviceType::CPU>);
}

TORCH_LIBRARY_IMPL(dcn_det, AutocastCUDA, m) {
  m.impl("deform_psroi_pool", &deform_psroi_pool_autocast<c10::DeviceType::CUDA>);
}

}  // namespace dcn_det
