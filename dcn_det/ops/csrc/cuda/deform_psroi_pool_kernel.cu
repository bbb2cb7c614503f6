// CUDA registration of dcn_det::deform_psroi_pool: the shared device algorithm
// (common/deform_psroi_pool_driver.h, element math in
// common/deform_psroi_pool_elements.h) launched one GPU thread per index
// (cuda_launch.h).
//
// The backward scatters with atomicAdd (input and offset gradients), so it is not
// bitwise deterministic; under torch.use_deterministic_algorithms(True) every
// gradient element gets one owning thread that accumulates in a fixed order.
#include <torch/library.h>

#include "../common/deform_psroi_pool_driver.h"
#include "cuda_launch.h"

namespace dcn_det {

using CudaDeformPSRoIPool = DeformPSRoIPoolDeviceBackend<CudaLauncher>;

TORCH_LIBRARY_IMPL(dcn_det, CUDA, m) {
  m.impl("deform_psroi_pool", &deform_psroi_pool_forward_kernel<CudaDeformPSRoIPool>);
  m.impl("_deform_psroi_pool_backward", &deform_psroi_pool_backward_kernel<CudaDeformPSRoIPool>);
}

}  // namespace dcn_det
