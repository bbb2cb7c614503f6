// CUDA registration of dcn_det::deform_conv2d: the shared device algorithm
// (common/deform_conv2d_driver.h, element math in common/deform_conv2d_elements.h)
// launched one GPU thread per index (cuda_launch.h); the GEMMs run in cuBLAS
// through at::bmm.
//
// col2im scatters with atomicAdd, so the input gradient is not bitwise
// deterministic; under torch.use_deterministic_algorithms(True) the backend runs
// one owner thread per (image, channel) plane instead (reproducible, slower).
#include <torch/library.h>

#include "../common/deform_conv2d_driver.h"
#include "cuda_launch.h"

namespace dcn_det {

using CudaDeformConv2d = DeformConv2dDeviceBackend<CudaLauncher>;

TORCH_LIBRARY_IMPL(dcn_det, CUDA, m) {
  m.impl("deform_conv2d", &deform_conv2d_forward_kernel<CudaDeformConv2d>);
  m.impl("_deform_conv2d_backward", &deform_conv2d_backward_kernel<CudaDeformConv2d>);
}

}  // namespace dcn_det
