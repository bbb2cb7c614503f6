// Small host-side helpers shared by the operators' schema files and drivers.
#pragma once

#include <ATen/ATen.h>

#include <sstream>
#include <string>

namespace dcn_det {

// "[2, 3, 4]": a tensor's shape for error messages.
inline std::string shape_str(const at::Tensor& t) {
  std::ostringstream ss;
  ss << t.sizes();
  return ss.str();
}

// The dtype the kernels compute in: float16/bfloat16 in float32 (rounded once at
// the end), float32/float64 as they are.
inline at::ScalarType compute_type(at::ScalarType t) {
  return (t == at::kHalf || t == at::kBFloat16) ? at::kFloat : t;
}

}  // namespace dcn_det
