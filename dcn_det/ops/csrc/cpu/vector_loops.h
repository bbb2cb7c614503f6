// Innermost loops of the CPU kernels: runs of contiguous channels, written with
// GCC/Clang vector extensions (DCN_VECTOR_BYTES-byte vectors: 32 = one AVX register,
// or two SSE registers on the baseline x86-64 target; 64 = one AVX-512 register) so
// they vectorise whatever the optimiser decides. Plain loops were measured to
// compile the dot products to scalar code with register spills. Compiled once per
// instruction set, in namespace DCN_CPU_ISA (cpu/isa/).
#pragma once

#include <cstdint>
#include <cstring>

// The vector helpers are inline and never cross a library boundary, so GCC's note
// that 32-byte vector arguments have another ABI with AVX enabled does not apply.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

#if !defined(DCN_CPU_ISA) || !defined(DCN_VECTOR_BYTES)
#error "vector_loops.h is compiled per instruction set: include it from a cpu/isa/ file"
#endif

namespace dcn_det {
namespace cpu {
namespace DCN_CPU_ISA {

template <typename T>
struct Vec {
  static constexpr int kWidth = DCN_VECTOR_BYTES / sizeof(T);
  typedef T type __attribute__((vector_size(DCN_VECTOR_BYTES)));

  static type load(const T* p) {
    type v;
    std::memcpy(&v, p, sizeof(v));  // unaligned load
    return v;
  }
  static void store(T* p, type v) { std::memcpy(p, &v, sizeof(v)); }
  static T sum(type v) {
    T s = T(0);
    for (int l = 0; l < kWidth; ++l) s += v[l];
    return s;
  }
};

// dst[i] = w0*a[i] + w1*b[i] + w2*c[i] + w3*d[i]
template <typename T>
inline void weighted_sum4(T* __restrict dst, const T* __restrict a, const T* __restrict b,
                          const T* __restrict c, const T* __restrict d, T w0, T w1, T w2, T w3,
                          int64_t n) {
  using V = Vec<T>;
  int64_t i = 0;
  for (; i + V::kWidth <= n; i += V::kWidth) {
    V::store(dst + i, w0 * V::load(a + i) + w1 * V::load(b + i) + w2 * V::load(c + i) + w3 * V::load(d + i));
  }
  for (; i < n; ++i) {
    dst[i] = w0 * a[i] + w1 * b[i] + w2 * c[i] + w3 * d[i];
  }
}

// dst[i] += w0*a[i] + w1*b[i] + w2*c[i] + w3*d[i]  (a..d may coincide: they are only read)
template <typename T>
inline void weighted_add4(T* __restrict dst, const T* a, const T* b, const T* c, const T* d, T w0, T w1,
                          T w2, T w3, int64_t n) {
  using V = Vec<T>;
  int64_t i = 0;
  for (; i + V::kWidth <= n; i += V::kWidth) {
    V::store(dst + i,
             V::load(dst + i) + w0 * V::load(a + i) + w1 * V::load(b + i) + w2 * V::load(c + i) + w3 * V::load(d + i));
  }
  for (; i < n; ++i) {
    dst[i] += w0 * a[i] + w1 * b[i] + w2 * c[i] + w3 * d[i];
  }
}

// dst[i] += w * g[i]
template <typename T>
inline void axpy(T* __restrict dst, const T* __restrict g, T w, int64_t n) {
  using V = Vec<T>;
  int64_t i = 0;
  for (; i + V::kWidth <= n; i += V::kWidth) {
    V::store(dst + i, V::load(dst + i) + w * V::load(g + i));
  }
  for (; i < n; ++i) {
    dst[i] += w * g[i];
  }
}

// a[i] += w0*g[i], b[i] += w1*g[i], c[i] += w2*g[i], d[i] += w3*g[i]
// (a..d are 4 distinct corners: they never overlap within n <= channels).
template <typename T>
inline void scatter_add4(T* __restrict a, T* __restrict b, T* __restrict c, T* __restrict d,
                         const T* __restrict g, T w0, T w1, T w2, T w3, int64_t n) {
  using V = Vec<T>;
  int64_t i = 0;
  for (; i + V::kWidth <= n; i += V::kWidth) {
    const typename V::type v = V::load(g + i);
    V::store(a + i, V::load(a + i) + w0 * v);
    V::store(b + i, V::load(b + i) + w1 * v);
    V::store(c + i, V::load(c + i) + w2 * v);
    V::store(d + i, V::load(d + i) + w3 * v);
  }
  for (; i < n; ++i) {
    const T v = g[i];
    a[i] += w0 * v;
    b[i] += w1 * v;
    c[i] += w2 * v;
    d[i] += w3 * v;
  }
}

// out[j] += sum_i g[i] * corner_j[i] for the 4 corners, through vector partial
// sums (a fixed order, so the result is the same on every run).
template <typename T>
inline void dot_products4(const T* __restrict g, const T* __restrict a, const T* __restrict b,
                          const T* __restrict c, const T* __restrict d, int64_t n, T out[4]) {
  using V = Vec<T>;
  typename V::type sa = {}, sb = {}, sc = {}, sd = {};
  int64_t i = 0;
  for (; i + V::kWidth <= n; i += V::kWidth) {
    const typename V::type v = V::load(g + i);
    sa += v * V::load(a + i);
    sb += v * V::load(b + i);
    sc += v * V::load(c + i);
    sd += v * V::load(d + i);
  }
  T ta = V::sum(sa), tb = V::sum(sb), tc = V::sum(sc), td = V::sum(sd);
  for (; i < n; ++i) {
    const T v = g[i];
    ta += v * a[i];
    tb += v * b[i];
    tc += v * c[i];
    td += v * d[i];
  }
  out[0] += ta;
  out[1] += tb;
  out[2] += tc;
  out[3] += td;
}

}  // namespace DCN_CPU_ISA
}  // namespace cpu
}  // namespace dcn_det

#pragma GCC diagnostic pop
