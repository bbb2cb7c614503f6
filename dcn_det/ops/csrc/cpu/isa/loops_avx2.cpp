// The CPU loops for AVX2 + FMA (32-byte vectors), x86-64 only. See loop_tables.h.
#if defined(__x86_64__)
#define DCN_CPU_ISA avx2
#define DCN_VECTOR_BYTES 32
#define DCN_ISA_TARGET "avx2,fma"
#include "compile_loops.h"
#endif
