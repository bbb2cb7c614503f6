// Which instruction set the CPU loops run with (loop_tables.h): decided once, from
// what the CPU supports, what this build has and ATEN_CPU_CAPABILITY; the test
// suite can force any available one (set_cpu_isa_override) to check each variant.
#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <string>

#include "cpu_isa.h"
#include "loop_tables.h"

namespace dcn_det {
namespace cpu {
namespace {

constexpr bool kWideBuilt =
#if defined(__x86_64__)
    true;
#else
    false;
#endif

bool cpu_supports(CpuIsa isa) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  switch (isa) {
    case CpuIsa::kBaseline:
      return true;
    case CpuIsa::kAvx2:
      return avx2;
    case CpuIsa::kAvx512:
      return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  }
  return false;
#else
  return isa == CpuIsa::kBaseline;
#endif
}

// PyTorch's switch: ATEN_CPU_CAPABILITY=default|avx2|avx512 caps the choice (unset or
// another value: no cap).
CpuIsa capability_cap() {
  const char* env = std::getenv("ATEN_CPU_CAPABILITY");
  std::string value = env ? env : "";
  std::transform(value.begin(), value.end(), value.begin(), [](unsigned char c) { return std::tolower(c); });
  if (value == "default") return CpuIsa::kBaseline;
  if (value == "avx2") return CpuIsa::kAvx2;
  return CpuIsa::kAvx512;
}

CpuIsa detect() {
  const CpuIsa cap = capability_cap();
  for (CpuIsa isa : {CpuIsa::kAvx512, CpuIsa::kAvx2}) {
    if (static_cast<int>(isa) <= static_cast<int>(cap) && cpu_isa_available(isa)) return isa;
  }
  return CpuIsa::kBaseline;
}

std::atomic<int> g_override{-1};

}  // namespace

bool cpu_isa_available(CpuIsa isa) { return (isa == CpuIsa::kBaseline || kWideBuilt) && cpu_supports(isa); }

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kBaseline:
      return "baseline";
    case CpuIsa::kAvx2:
      return "avx2";
    case CpuIsa::kAvx512:
      return "avx512";
  }
  return "unknown";
}

CpuIsa selected_cpu_isa() {
  const int forced = g_override.load();
  if (forced >= 0) return static_cast<CpuIsa>(forced);
  static const CpuIsa detected = detect();
  return detected;
}

void set_cpu_isa_override(int isa) {
  if (isa >= 0) {
    TORCH_CHECK_VALUE(isa <= static_cast<int>(CpuIsa::kAvx512), "cpu_isa: unknown instruction set ", isa);
    TORCH_CHECK_VALUE(cpu_isa_available(static_cast<CpuIsa>(isa)), "cpu_isa: ", cpu_isa_name(static_cast<CpuIsa>(isa)),
                      " is not available (not built, or not supported by this CPU)");
  }
  g_override.store(isa < 0 ? -1 : isa);
}

int cpu_isa_override() { return g_override.load(); }

const LoopTables& selected_loop_tables() {
  switch (selected_cpu_isa()) {
#if defined(__x86_64__)
    case CpuIsa::kAvx512:
      return loop_tables_avx512();
    case CpuIsa::kAvx2:
      return loop_tables_avx2();
#endif
    default:
      return loop_tables_baseline();
  }
}

}  // namespace cpu
}  // namespace dcn_det
