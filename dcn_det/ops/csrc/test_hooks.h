// Switches for the test suite, set from Python through dcn_det._C._set_test_hooks
// (wrapped by dcn_det.ops._device_path). Users never need them.
//  * host device path: the CPU registrations run the CUDA kernels' bodies
//    (common/*_elements.h's *Op structs) in host loops instead of the CPU kernels,
//    so the CPU test suite executes the GPU's element math (cpu/device_path.cpp);
//  * column budget: the element count at which deform_conv2d splits a batch into
//    chunks, lowered so that small test inputs run through several chunks;
//  * conv path: the CPU deform_conv2d forward and backward pick their fused (tiled) or
//    unfused (whole column matrix) path by weight size; the tests force each, since
//    their small shapes would otherwise only ever take the fused one.
#pragma once

#include <cstdint>

namespace dcn_det {

bool host_device_path_enabled();
// 0 when not overridden.
int64_t column_budget_override();
enum class ConvPath : int { kAuto = 0, kFused = 1, kUnfused = 2 };
ConvPath conv_path_override();
// Sets all three; returns nothing (the Python wrapper restores the previous values).
void set_test_hooks(bool host_device_path, int64_t column_budget, ConvPath conv_path);
// Operator calls that took the host device path so far (so a test can prove it ran
// the device algorithm, not the CPU kernel).
void count_device_path_call();
int64_t device_path_calls();

}  // namespace dcn_det
