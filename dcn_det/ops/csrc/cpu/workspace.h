// Scratch buffers reused across calls of the CPU kernels.
//
// Why: the column buffer and its companions are tens of MB. Allocated per call,
// such blocks come fresh from the OS (glibc serves them with mmap and returns
// them on free), so every call pays a page fault plus a page clear for each
// 4 KiB on first touch -- measured here at about 20 ms per 37 MB, as much as the
// sampling loop itself. One buffer per (calling thread, slot), grown on demand
// and kept, removes that cost after the first call.
//
// A slot's buffer is only valid until the next get() of the same slot on the
// same thread: kernels use them for intermediates, never for returned tensors.
// Buffers larger than kMaxCachedBytes are not kept (allocated per call).
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstdint>

namespace dcn_det {
namespace cpu {

enum class WorkspaceSlot : int { kColumns = 0, kColumnsLow, kColumnTile, kColumnTileLow, kPaddedInput, kPaddedGrad, kCorners, kCount };

constexpr int64_t kMaxCachedBytes = int64_t(256) << 20;

// Uninitialised buffer of `numel` elements of `options`' dtype on the CPU.
inline at::Tensor workspace(WorkspaceSlot slot, int64_t numel, const at::TensorOptions& options) {
  thread_local std::array<at::Tensor, static_cast<int>(WorkspaceSlot::kCount)> buffers;
  const int64_t bytes = numel * static_cast<int64_t>(options.dtype().itemsize());
  if (bytes > kMaxCachedBytes) {
    return at::empty({numel}, options);
  }
  at::Tensor& buffer = buffers[static_cast<int>(slot)];
  if (!buffer.defined() || buffer.nbytes() < static_cast<size_t>(bytes)) {
    buffer = at::Tensor();  // release the old one first: peak memory = new size
    buffer = at::empty({bytes}, options.dtype(at::kByte));
  }
  return at::from_blob(buffer.data_ptr(), {numel}, options);
}

}  // namespace cpu
}  // namespace dcn_det
