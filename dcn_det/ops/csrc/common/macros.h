// Portability macros so the element math in common/ compiles for both the CPU
// kernels (plain C++) and the CUDA kernels (nvcc), and is therefore the same code
// on both devices: the CPU tests exercise the arithmetic the GPU runs.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define DCN_HOST_DEVICE __host__ __device__
#define DCN_INLINE __host__ __device__ __forceinline__
#define DCN_UNROLL _Pragma("unroll")
#else
#define DCN_HOST_DEVICE
#define DCN_INLINE inline
#define DCN_UNROLL  // host compilers unroll these 4-iteration loops by themselves
#endif
