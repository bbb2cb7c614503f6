// The CPU loops for AVX-512 F/BW/DQ/VL (64-byte vectors), x86-64 only. See loop_tables.h.
#if defined(__x86_64__)
#define DCN_CPU_ISA avx512
#define DCN_VECTOR_BYTES 64
#define DCN_ISA_TARGET "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"
#include "compile_loops.h"
#endif
