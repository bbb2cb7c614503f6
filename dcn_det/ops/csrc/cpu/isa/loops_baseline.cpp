// The CPU loops for the build's baseline target (SSE2 on x86-64; whatever the
// compiler targets elsewhere). See loop_tables.h.
#define DCN_CPU_ISA baseline
#define DCN_VECTOR_BYTES 32
#include "compile_loops.h"
