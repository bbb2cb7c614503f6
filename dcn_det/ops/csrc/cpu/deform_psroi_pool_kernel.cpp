// CPU kernels of dcn_det::deform_psroi_pool: at::parallel_for over the per-bin
// bodies of common/deform_psroi_pool_elements.h (the loops: group_size > 1 in
// cpu/deform_psroi_pool_grouped_loops.h, group_size 1 in cpu/deform_psroi_pool_loops.h;
// both compiled per instruction set). The device (CUDA) algorithm of
// common/deform_psroi_pool_driver.h also runs here, for the tests, behind the test
// suite's switch (the host device path, device_path.h).
//
// All output channels of one offset class (all channels when no_trans) share every
// sample position of a bin, so each task gathers a bin's samples (corners and weights)
// once and then loops over the class's channels: the per-sample cost is 4 loads and 4
// multiply-adds, as in a plain RoIAlign.
//
// Backward without atomics, deterministic: the input gradient is computed per block of
// output channels (disjoint output channels read disjoint input channels), the offset
// gradient per RoI (a task owns that RoI's offsets).
//
// group_size 1 (deformable RoI pooling of Faster R-CNN) takes the channels-last path of
// deform_psroi_pool_channels_last.h instead: the channels of a class are one contiguous
// run per sample corner there.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../common/deform_psroi_pool_driver.h"
#include "deform_psroi_pool_channels_last.h"
#include "device_path.h"
#include "isa/loop_tables.h"

namespace dcn_det {
namespace {

// [N, C, H, W] data at `data` as a contiguous [N, H, W, C] tensor.
template <typename T>
at::Tensor to_channels_last(const DeformPSRoIPoolGeometry& g, const T* data) {
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  return at::from_blob(const_cast<T*>(data), {g.batch, g.channels, g.height, g.width}, options)
      .permute({0, 2, 3, 1})
      .contiguous();
}

// [R, C, bins] at `data` as a contiguous [R, bins, C] tensor.
template <typename T>
at::Tensor bins_outer(const DeformPSRoIPoolGeometry& g, const T* data, int64_t num_rois) {
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  return at::from_blob(const_cast<T*>(data), {num_rois, g.output_dim, g.bins()}, options).transpose(1, 2).contiguous();
}

struct CpuBackend {
  struct Guard {
    explicit Guard(const c10::Device&) {}
  };

  template <typename T>
  static void forward_group1(const DeformPSRoIPoolGeometry& g, const T* input, const T* rois, const T* offset,
                             int64_t num_rois, T* output) {
    const cpu::GatheredBins<T> gathered(g, rois, offset, num_rois);
    const at::Tensor input_nhwc = to_channels_last(g, input);
    at::Tensor out = at::empty({num_rois, g.bins(), g.output_dim}, input_nhwc.options());
    cpu::deform_psroi_pool_loops<T>().forward(gathered, input_nhwc.const_data_ptr<T>(), num_rois, out.mutable_data_ptr<T>());
    at::from_blob(output, {num_rois, g.output_dim, g.bins()}, input_nhwc.options()).copy_(out.transpose(1, 2));
  }

  template <typename T>
  static void backward_group1(const DeformPSRoIPoolGeometry& g, const T* grad_output, const T* input,
                              const T* rois, const T* offset, int64_t num_rois, T* grad_input, T* grad_offset) {
    const cpu::GatheredBins<T> gathered(g, rois, offset, num_rois);
    const at::Tensor go = bins_outer(g, grad_output, num_rois);
    const at::Tensor input_nhwc = to_channels_last(g, input);
    at::Tensor grad_nhwc = at::zeros({g.batch, g.height, g.width, g.channels}, input_nhwc.options());
    cpu::deform_psroi_pool_loops<T>().input_grad(gathered, go.const_data_ptr<T>(), num_rois, grad_nhwc.mutable_data_ptr<T>());
    at::from_blob(grad_input, {g.batch, g.channels, g.height, g.width}, input_nhwc.options())
        .add_(grad_nhwc.permute({0, 3, 1, 2}));
    if (!g.no_trans) {
      cpu::deform_psroi_pool_loops<T>().offset_grad(gathered, input_nhwc.const_data_ptr<T>(), go.const_data_ptr<T>(),
                                           num_rois, grad_offset);
    }
  }

  template <typename T>
  static void forward(const DeformPSRoIPoolGeometry& g, const T* input, const T* rois,
                      const T* offset, int64_t num_rois, T* output) {
    if (g.group_size == 1) {
      forward_group1(g, input, rois, offset, num_rois, output);
      return;
    }
    cpu::deform_psroi_pool_loops<T>().forward_grouped(g, input, rois, offset, num_rois, output);
  }

  template <typename T>
  static void backward(const DeformPSRoIPoolGeometry& g, const T* grad_output, const T* input,
                       const T* rois, const T* offset, int64_t num_rois, T* grad_input,
                       T* grad_offset) {
    if (g.group_size == 1) {
      backward_group1(g, grad_output, input, rois, offset, num_rois, grad_input, grad_offset);
      return;
    }
    const auto& loops = cpu::deform_psroi_pool_loops<T>();
    loops.input_grad_grouped(g, grad_output, rois, offset, num_rois, grad_input);
    if (!g.no_trans) {
      loops.offset_grad_grouped(g, grad_output, input, rois, offset, num_rois, grad_offset);
    }
  }
};

}  // namespace

using HostDeformPSRoIPool = DeformPSRoIPoolDeviceBackend<HostLauncher>;

TORCH_LIBRARY_IMPL(dcn_det, CPU, m) {
  m.impl("deform_psroi_pool", &RoutedKernel<&deform_psroi_pool_forward_kernel<CpuBackend>,
                                            &deform_psroi_pool_forward_kernel<HostDeformPSRoIPool>>::call);
  m.impl("_deform_psroi_pool_backward",
         &RoutedKernel<&deform_psroi_pool_backward_kernel<CpuBackend>,
                       &deform_psroi_pool_backward_kernel<HostDeformPSRoIPool>>::call);
}

}  // namespace dcn_det
