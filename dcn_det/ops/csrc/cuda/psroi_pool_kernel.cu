// CUDA registration of dcn_det::psroi_pool (integer-bin PS-RoI pooling): the shared
// device algorithm (common/psroi_pool_driver.h, element math in
// common/psroi_pool_elements.h) launched one GPU thread per index (cuda_launch.h).
//
// The backward scatters with atomicAdd, so it is not bitwise deterministic; under
// torch.use_deterministic_algorithms(True) every input plane gets one owning thread
// that accumulates in a fixed order.
#include <torch/library.h>

#include "../common/psroi_pool_driver.h"
#include "cuda_launch.h"

namespace dcn_det {

using CudaPSRoIPool = PSRoIPoolDeviceBackend<CudaLauncher>;

TORCH_LIBRARY_IMPL(dcn_det, CUDA, m) {
  m.impl("psroi_pool", &psroi_pool_forward_kernel<CudaPSRoIPool>);
  m.impl("_psroi_pool_backward", &psroi_pool_backward_kernel<CudaPSRoIPool>);
}

}  // namespace dcn_det
