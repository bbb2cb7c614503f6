// The scatter-add of the device kernels' backward passes: an atomic add, on the
// GPU (atomicAdd) and on the host (where the host device path runs the same
// kernels' bodies from several threads, so races resolve as they do on a GPU).
#pragma once

#include <atomic>
#include <version>

#include "macros.h"

namespace dcn_det {

template <typename T>
DCN_INLINE void atomic_add(T* address, T value) {
#if defined(__CUDA_ARCH__)
  atomicAdd(address, value);
#elif defined(__cpp_lib_atomic_ref)
  std::atomic_ref<T>(*address).fetch_add(value, std::memory_order_relaxed);
#else
  // C++17 (older torch builds): compare-and-swap on the value's bits.
  T expected, desired;
  __atomic_load(address, &expected, __ATOMIC_RELAXED);
  desired = expected + value;
  while (!__atomic_compare_exchange(address, &expected, &desired, true, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED)) {
    desired = expected + value;
  }
#endif
}

// The `add` policies of the scatter functions in common/*_elements.h.
struct AtomicAdd {  // several threads may write the element
  template <typename T>
  DCN_INLINE void operator()(T* address, T value) const { atomic_add(address, value); }
};
struct OwnedAdd {  // the calling thread owns the element (deterministic paths, CPU kernels)
  template <typename T>
  DCN_INLINE void operator()(T* address, T value) const { *address += value; }
};

}  // namespace dcn_det
