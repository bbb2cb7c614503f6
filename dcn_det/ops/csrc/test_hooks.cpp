#include "test_hooks.h"

#include <atomic>

namespace dcn_det {
namespace {
// Atomics: the flags are read from any thread (autograd runs backward on its own
// threads for some devices), written only by the test suite between calls.
std::atomic<bool> g_host_device_path{false};
std::atomic<int64_t> g_column_budget{0};
std::atomic<int64_t> g_device_path_calls{0};
std::atomic<int> g_conv_path{0};
}  // namespace

bool host_device_path_enabled() { return g_host_device_path.load(std::memory_order_relaxed); }
int64_t column_budget_override() { return g_column_budget.load(std::memory_order_relaxed); }

ConvPath conv_path_override() {
  return static_cast<ConvPath>(g_conv_path.load(std::memory_order_relaxed));
}

void set_test_hooks(bool host_device_path, int64_t column_budget, ConvPath conv_path) {
  g_conv_path.store(static_cast<int>(conv_path), std::memory_order_relaxed);
  g_host_device_path.store(host_device_path, std::memory_order_relaxed);
  g_column_budget.store(column_budget < 0 ? 0 : column_budget, std::memory_order_relaxed);
}

void count_device_path_call() { g_device_path_calls.fetch_add(1, std::memory_order_relaxed); }
int64_t device_path_calls() { return g_device_path_calls.load(std::memory_order_relaxed); }

}  // namespace dcn_det
