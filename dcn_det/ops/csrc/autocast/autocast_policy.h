// What both operators do under torch.autocast (shared by the two autocast kernels).
//
// Policy, conv2d's ("lower precision"): floating inputs are cast to the autocast
// dtype (bfloat16 on CPU, float16 on CUDA, unless the user chose another), the
// kernels accumulate in float32 anyway (compute_type in host_utils.h), and the
// output has the autocast dtype. Without these kernels the dispatcher falls
// through and a bfloat16 activation meets a float32 weight: a dtype error.
// RoIs are never cast: 16-bit box coordinates would lose whole pixels.
#pragma once

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include <optional>

namespace dcn_det {

template <c10::DeviceType kDevice>
struct AutocastPolicy {
  static constexpr c10::DispatchKey kKey =
      kDevice == c10::DeviceType::CPU ? c10::DispatchKey::AutocastCPU : c10::DispatchKey::AutocastCUDA;

  static at::Tensor cast(const at::Tensor& t) {
    return at::autocast::cached_cast(at::autocast::get_autocast_dtype(kDevice), t, kDevice);
  }
  static std::optional<at::Tensor> cast(const std::optional<at::Tensor>& t) {
    return at::autocast::cached_cast(at::autocast::get_autocast_dtype(kDevice), t, kDevice);
  }
};

}  // namespace dcn_det
