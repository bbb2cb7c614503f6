// CPU kernels of dcn_det::psroi_pool (integer-bin PS-RoI pooling): at::parallel_for
// over the element ops of common/psroi_pool_elements.h, the same bodies the GPU runs.
// The device (CUDA) algorithm of common/psroi_pool_driver.h also runs here, for the
// tests, behind the test suite's switch (the host device path, device_path.h).
//
// Backward without atomics, deterministic: one task per input plane (image, channel),
// which owns it and adds the bins of every RoI in a fixed order (the original's order,
// so float32 gradients are bitwise those of MXNet's serial CPU loop).
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>

#include "../common/psroi_pool_driver.h"
#include "device_path.h"

namespace dcn_det {
namespace {

struct CpuBackend {
  struct Guard {
    explicit Guard(const c10::Device&) {}
  };

  template <typename T>
  static void forward(const PSRoIPoolGeometry& g, const T* input, const T* rois, int64_t num_rois, T* output) {
    const PSRoIPoolForwardOp<T> op{g, input, rois, output};
    // A bin reads about (H / pooled_size) * (W / pooled_size) pixels of a RoI's extent.
    const int64_t pixels = std::max<int64_t>(1, g.height * g.width / g.bins());
    const int64_t grain = std::max<int64_t>(1, at::internal::GRAIN_SIZE / pixels);
    at::parallel_for(0, num_rois * g.output_dim * g.bins(), grain, [&](int64_t begin, int64_t end) {
      for (int64_t e = begin; e < end; ++e) op(e);
    });
  }

  template <typename T>
  static void backward(const PSRoIPoolGeometry& g, const T* grad_output, const T* rois, int64_t num_rois,
                       T* grad_input) {
    const PSRoIPoolInputGradOwnerOp<T> op{g, grad_output, rois, num_rois, grad_input};
    at::parallel_for(0, g.batch * g.channels, 1, [&](int64_t begin, int64_t end) {
      for (int64_t owner = begin; owner < end; ++owner) op(owner);
    });
  }
};

}  // namespace

using HostPSRoIPool = PSRoIPoolDeviceBackend<HostLauncher>;

TORCH_LIBRARY_IMPL(dcn_det, CPU, m) {
  m.impl("psroi_pool",
         &RoutedKernel<&psroi_pool_forward_kernel<CpuBackend>, &psroi_pool_forward_kernel<HostPSRoIPool>>::call);
  m.impl("_psroi_pool_backward",
         &RoutedKernel<&psroi_pool_backward_kernel<CpuBackend>, &psroi_pool_backward_kernel<HostPSRoIPool>>::call);
}

}  // namespace dcn_det
