// The instruction set of the CPU loops (loop_tables.h), without ATen: also used by
// module.cpp, which reports and (for the tests) forces it.
#pragma once

namespace dcn_det {
namespace cpu {

enum class CpuIsa { kBaseline = 0, kAvx2 = 1, kAvx512 = 2 };

// The instruction set the loops run with: the widest that the CPU supports, the
// build has, and ATEN_CPU_CAPABILITY (default / avx2 / avx512, PyTorch's switch)
// allows; or the one forced by set_cpu_isa_override.
CpuIsa selected_cpu_isa();
const char* cpu_isa_name(CpuIsa isa);
bool cpu_isa_available(CpuIsa isa);  // built, and supported by this CPU
// Test suite: force an available ISA (-1: back to the detected one). Throws for an
// unavailable one.
void set_cpu_isa_override(int isa);
int cpu_isa_override();

}  // namespace cpu
}  // namespace dcn_det
