// The host device path: the device algorithms of common/*_driver.h run on the CPU,
// for the test suite. HostLauncher runs an element Op (common/*_elements.h) for
// every index in at::parallel_for loops -- the same structs, index ranges,
// chunking and deterministic switch a GPU runs, with the GPU's atomicAdd as a real
// atomic add (common/atomic_add.h), so races resolve as they would on a GPU.
//
// RoutedKernel<CpuKernel, DevicePathKernel>::call is what the CPU registrations
// point at: the CPU kernel, or the device path while the test suite's switch is on
// (test_hooks.h; dcn_det.ops._device_path in Python). It is one relaxed atomic
// load per operator call.
#pragma once

#include <ATen/Parallel.h>

#include <cstdint>

#include "../test_hooks.h"

namespace dcn_det {

struct HostLauncher {
  struct Guard {
    explicit Guard(const c10::Device&) {}
  };

  // Small grains so that even test-sized problems run on several threads at once
  // (the point is to behave like a GPU, not to be fast).
  static constexpr int64_t kGrain = 64;

  template <typename Op>
  static void launch(int64_t n, const Op& op) {
    if (n <= 0) return;
    at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) op(i);
    });
  }
};

template <auto CpuKernel, auto DevicePathKernel>
struct RoutedKernel;

template <typename R, typename... Args, R (*CpuKernel)(Args...), R (*DevicePathKernel)(Args...)>
struct RoutedKernel<CpuKernel, DevicePathKernel> {
  static R call(Args... args) {
    if (host_device_path_enabled()) {
      count_device_path_call();
      return DevicePathKernel(args...);
    }
    return CpuKernel(args...);
  }
};

}  // namespace dcn_det
