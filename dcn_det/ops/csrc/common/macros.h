// Portability macros so the element math in common/ compiles for both the CUDA
// kernels (nvcc) and the host (plain C++): the same functions run on the GPU and,
// through the host device path (cpu/device_path.cpp), in the CPU test suite.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define DCN_INLINE __host__ __device__ __forceinline__
#define DCN_UNROLL _Pragma("unroll")
#else
#define DCN_INLINE inline
#define DCN_UNROLL  // host compilers unroll these 4-iteration loops by themselves
#endif
