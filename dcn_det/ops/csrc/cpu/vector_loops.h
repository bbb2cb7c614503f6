// Innermost loops of the CPU kernels: runs of contiguous channels, written so
// the compiler vectorises them (restrict pointers, no reductions across lanes
// except through the explicit lane accumulators of dot_products4).
#pragma once

#include <cstdint>

namespace dcn_det {
namespace cpu {

// dst[i] = w0*a[i] + w1*b[i] + w2*c[i] + w3*d[i]
template <typename T>
inline void weighted_sum4(T* __restrict dst, const T* __restrict a, const T* __restrict b,
                          const T* __restrict c, const T* __restrict d, T w0, T w1, T w2, T w3,
                          int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    dst[i] = w0 * a[i] + w1 * b[i] + w2 * c[i] + w3 * d[i];
  }
}

// a[i] += w0*g[i], b[i] += w1*g[i], c[i] += w2*g[i], d[i] += w3*g[i]
// (a..d are 4 distinct corners: they never overlap within n <= channels).
template <typename T>
inline void scatter_add4(T* __restrict a, T* __restrict b, T* __restrict c, T* __restrict d,
                         const T* __restrict g, T w0, T w1, T w2, T w3, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T v = g[i];
    a[i] += w0 * v;
    b[i] += w1 * v;
    c[i] += w2 * v;
    d[i] += w3 * v;
  }
}

// out[j] += sum_i g[i] * corner_j[i] for the 4 corners. The sums go through
// kLanes independent partial sums (a fixed order, so the result is the same on
// every run) which the compiler maps onto vector registers.
template <typename T>
inline void dot_products4(const T* __restrict g, const T* __restrict a, const T* __restrict b,
                          const T* __restrict c, const T* __restrict d, int64_t n, T out[4]) {
  constexpr int kLanes = 8;
  T sa[kLanes] = {}, sb[kLanes] = {}, sc[kLanes] = {}, sd[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const T v = g[i + l];
      sa[l] += v * a[i + l];
      sb[l] += v * b[i + l];
      sc[l] += v * c[i + l];
      sd[l] += v * d[i + l];
    }
  }
  for (; i < n; ++i) {
    const T v = g[i];
    sa[0] += v * a[i];
    sb[0] += v * b[i];
    sc[0] += v * c[i];
    sd[0] += v * d[i];
  }
  T ta = T(0), tb = T(0), tc = T(0), td = T(0);
  for (int l = 0; l < kLanes; ++l) {
    ta += sa[l];
    tb += sb[l];
    tc += sc[l];
    td += sd[l];
  }
  out[0] += ta;
  out[1] += tb;
  out[2] += tc;
  out[3] += td;
}

}  // namespace cpu
}  // namespace dcn_det
