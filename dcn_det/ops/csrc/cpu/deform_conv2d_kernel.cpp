// CPU kernels of dcn_det::deform_conv2d, channels-last (the sampling loops are in
// cpu/deform_conv2d_channels_last.h). Per chunk of images:
//   forward:  padded NHWC input -> columns [nb*P, K*C] (im2col) -> output = columns @ W'^T
//             (small weights: fused, one L2-sized tile of columns at a time; see
//             forward_chunk_fused)
//   backward: columns again -> grad W' += grad_output @ columns
//             -> grad_columns = grad_output^T @ W' (into the same buffer)
//             -> grad offset/mask (per sample) -> grad input (col2im, per channel block)
//             (small weights: the first four fused per tile too; see backward_chunk)
// where W' is the weight with taps before channels ([Co, K, C/groups] per group) so
// that one output pixel's column row matches it. The output GEMM yields NHWC,
// copied to the NCHW result. The products are large single calls (oneDNN 1x1
// convolution forward, BLAS at::mm backward); the sampling loops run over
// contiguous channel runs.
//
// Deterministic: no atomics; col2im gives each input-gradient element one writer
// and a fixed summation order (see col2im_channels_last); the fused backward's
// per-thread weight-gradient sums are added in thread order (OpenMP's static split of
// the tiles: the same for the same thread count, as in the BLAS products).
//
// The device (CUDA) algorithm is the NCHW element-per-thread one of
// common/deform_conv2d_driver.h; this kernel shares its validation, operand
// conversion, chunking, sampling-point formula and bilinear weights. The device
// algorithm itself runs on the CPU too, for the tests (the host device path,
// device_path.h), registered below behind the test suite's switch.
#include <torch/library.h>

#include "../common/deform_conv2d_driver.h"
#include "../test_hooks.h"
#include "deform_conv2d_channels_last.h"
#include "device_path.h"
#include "isa/loop_tables.h"
#include "transpose.h"
#include "workspace.h"

namespace dcn_det {
namespace {

using cpu::ChannelsLastGeometry;
using cpu::PaddedCorners;

// [nb, C, H, W] -> [nb, H+2, W+2, C] with a zero border, in a workspace slot.
at::Tensor pad_channels_last(const at::Tensor& input, cpu::WorkspaceSlot slot) {
  const int64_t nb = input.size(0), c = input.size(1), h = input.size(2), w = input.size(3);
  at::Tensor padded = cpu::workspace(slot, nb * (h + 2) * (w + 2) * c, input.options()).view({nb, h + 2, w + 2, c});
  padded.select(1, 0).zero_();
  padded.select(1, h + 1).zero_();
  padded.select(2, 0).zero_();
  padded.select(2, w + 1).zero_();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "dcn_det::pad_channels_last", [&] {
    cpu::nchw_to_padded_nhwc(input.const_data_ptr<scalar_t>(), nb, c, h, w, padded.mutable_data_ptr<scalar_t>());
  });
  return padded;
}

// Weight [Co, C/groups, kh, kw] -> W' [groups, Co/groups, K*C/groups] (taps outer).
at::Tensor taps_outer_weight(const at::Tensor& weight, int64_t groups) {
  const int64_t co = weight.size(0), cg = weight.size(1);
  return weight.view({groups, co / groups, cg, -1}).permute({0, 1, 3, 2}).reshape({groups, co / groups, -1});
}

// Columns of group gi: [nb*P, K*C/groups], a strided view BLAS reads in place.
at::Tensor group_columns(const at::Tensor& columns, int64_t groups, int64_t gi) {
  const int64_t width = columns.size(1) / groups;
  return columns.narrow(1, gi * width, width);
}

// rows [nb*P, Co] (row stride ld) = columns [nb*P, K*C] times W'^T per weight
// group, plus bias (if defined), in wt's dtype (bfloat16 under autocast: the columns
// are rounded to it, the products accumulate in float32 inside oneDNN). float32 and
// bfloat16 run it as a 1x1 convolution over a channels-last view of the columns,
// straight to oneDNN (20-30% faster than the BLAS at::mm on our shapes, measured;
// called directly because at::conv2d's heuristics send some of these shapes to its
// slow im2col path). Other dtypes, or oneDNN disabled: at::mm.
at::Tensor columns_times_weight(const at::Tensor& columns_, const at::Tensor& wt, int64_t groups,
                                const at::Tensor& bias) {
  at::Tensor columns = columns_;
  if (columns_.scalar_type() != wt.scalar_type()) {  // bfloat16 product: round into a kept buffer
    columns = cpu::workspace(cpu::WorkspaceSlot::kColumnsLow, columns_.numel(), wt.options())
                  .view(columns_.sizes())
                  .copy_(columns_);
  }
  const int64_t rows = columns.size(0), width = columns.size(1);
  const int64_t co = wt.size(0) * wt.size(1);
  const bool onednn_dtype = wt.scalar_type() == at::kFloat || wt.scalar_type() == at::kBFloat16;
  if (onednn_dtype && at::globalContext().userEnabledMkldnn() && at::hasMKLDNN()) {
    const at::Tensor x = columns.as_strided({1, width, 1, rows}, {rows * width, 1, rows * width, width});
    const int64_t one[] = {1, 1}, zero[] = {0, 0};
    at::Tensor y = at::mkldnn_convolution(x, wt.view({co, -1, 1, 1}), bias, zero, one, one, groups);
    if (y.is_contiguous(at::MemoryFormat::ChannelsLast)) {
      return y.permute({0, 2, 3, 1}).view({rows, co});
    }
    return y.view({co, rows}).t().contiguous();  // oneDNN chose NCHW: not expected
  }
  // [nb*P, Co] = columns @ W'^T: BLAS runs this orientation faster than W' @ columns^T.
  at::Tensor out = at::empty({rows, co}, columns.options());
  for (int64_t gi = 0; gi < groups; ++gi) {
    at::Tensor dst = out.narrow(1, gi * wt.size(1), wt.size(1));
    at::mm_out(dst, group_columns(columns, groups, gi), wt[gi].t());
  }
  if (bias.defined()) {
    out.add_(bias);
  }
  return out;
}

// T: the sampling type (the operands' compute type); the output has wt's dtype.
template <typename T>
void forward_chunk(const ChannelsLastGeometry& cl, const at::Tensor& input, const at::Tensor& offset,
                   const at::Tensor& mask, const at::Tensor& wt, const at::Tensor& bias, int64_t b0,
                   int64_t nb, at::Tensor& output) {
  const DeformConv2dGeometry& g = cl.g;
  const int64_t P = g.out_pixels(), groups = cl.groups, cog = wt.size(1);
  const at::Tensor padded = pad_channels_last(input.narrow(0, b0, nb), cpu::WorkspaceSlot::kPaddedInput);
  at::Tensor columns = cpu::workspace(cpu::WorkspaceSlot::kColumns, nb * P * cl.row_length(), input.options())
                           .view({nb * P, cl.row_length()});
  cpu::deform_conv2d_loops<T>().im2col(cl, padded.const_data_ptr<T>(),
                               offset.const_data_ptr<T>() + b0 * offset.size(1) * P,
                               g.use_mask ? mask.const_data_ptr<T>() + b0 * g.samples_per_image() : nullptr,
                               nb, columns.mutable_data_ptr<T>());
  const at::Tensor rows = columns_times_weight(columns, wt, groups, bias);  // [nb*P, Co]
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, rows.scalar_type(), "dcn_det::nhwc_to_nchw", [&] {
    cpu::nhwc_to_nchw(rows.const_data_ptr<scalar_t>(), rows.stride(0), nb, groups * cog, P,
                      output.mutable_data_ptr<scalar_t>() + b0 * groups * cog * P);
  });
}

// Fused forward: when the weight is small enough to stay in cache next to a tile of
// columns, each task samples `tile` output pixels of one image into a thread-local,
// L2-sized buffer and multiplies them by W' at once, writing the NCHW output rows
// directly (no transpose). Why: the unfused path writes the whole column matrix
// (37.7 MB at 1x64x128x128) to memory and reads it back for the GEMM; measured here,
// that traffic cost as much as the sampling itself (8.7 ms of 16 ms). For large
// weights (256+ channels) the one big oneDNN product is faster than many small ones
// that each re-read the weight, and the unfused path stays.
constexpr int64_t kColumnTileBytes = int64_t(256) << 10;
constexpr int64_t kFusedWeightBytes = int64_t(1) << 20;

// Rows of columns per tile: kColumnTileBytes of them, at least 16, at most one image.
int64_t column_tile_rows(const ChannelsLastGeometry& cl, int64_t itemsize) {
  const int64_t rows = kColumnTileBytes / (cl.row_length() * itemsize);
  return std::min(cl.g.out_pixels(), std::max<int64_t>(16, rows));
}

int64_t column_tiles_per_image(const ChannelsLastGeometry& cl, int64_t itemsize) {
  const int64_t tile = column_tile_rows(cl, itemsize);
  return (cl.g.out_pixels() + tile - 1) / tile;
}

// The forward is also fused, whatever the weight, when a chunk is only a few tiles (small
// maps: a detector's res4/res5 at stride 16-32): there the unfused path's oneDNN product
// spends more on reordering the weight than on multiplying. Measured (interleaved, 2
// threads, forward / F.conv2d): 1x512x10x14 (9 tiles) fused 1.35x, unfused 2.20x;
// 1x256x20x28 (20 tiles) fused 2.13x, unfused 1.81x. The backward stays with the weight
// rule: its per-thread weight-gradient sums grow with the weight (1x512x10x14 forward +
// backward: fused 2.46x, unfused 1.50x).
constexpr int64_t kFusedForwardMaxTiles = 16;

// Whether a chunk of `images` takes the fused path: the test hook's choice, else the weight
// rule (product_itemsize: the weight's dtype), else, for the forward, the tile count
// (sample_itemsize: the columns' dtype).
bool use_fused_path(const ChannelsLastGeometry& cl, int64_t out_channels, int64_t product_itemsize,
                    int64_t sample_itemsize, int64_t images, bool forward) {
  const ConvPath forced = conv_path_override();
  if (forced != ConvPath::kAuto) return forced == ConvPath::kFused;
  const int64_t group_weight = (out_channels / cl.groups) * (cl.row_length() / cl.groups) * product_itemsize;
  if (group_weight <= kFusedWeightBytes) return true;
  return forward && images * column_tiles_per_image(cl, sample_itemsize) <= kFusedForwardMaxTiles;
}

// The fused paths' loop: `visit(columns, b, p0)` for every tile of output pixels
// [p0, p0 + len) of image b of the chunk, tiles in parallel; columns is [len, row] of T,
// a thread-local buffer for the visitor to fill. Worker threads do not inherit the
// caller's dispatch state: they stay below autograd (the weight may require grad; this
// is the kernel, not a differentiable op).
template <typename T, typename Visit>
void for_each_column_tile(const ChannelsLastGeometry& cl, int64_t nb, const at::TensorOptions& options,
                          const Visit& visit) {
  const int64_t P = cl.g.out_pixels(), row = cl.row_length();
  const int64_t tile = column_tile_rows(cl, sizeof(T)), tiles = column_tiles_per_image(cl, sizeof(T));
  at::parallel_for(0, nb * tiles, 1, [&](int64_t begin, int64_t end) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    const at::Tensor buffer = cpu::workspace(cpu::WorkspaceSlot::kColumnTile, tile * row, options).view({tile, row});
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / tiles, p0 = (t - b * tiles) * tile;
      visit(buffer.narrow(0, 0, std::min(tile, P - p0)), b, p0);
    }
  });
}

template <typename T>
void forward_chunk_fused(const ChannelsLastGeometry& cl, const at::Tensor& input, const at::Tensor& offset,
                         const at::Tensor& mask, const at::Tensor& wt, const at::Tensor& bias, int64_t b0,
                         int64_t nb, at::Tensor& output) {
  const DeformConv2dGeometry& g = cl.g;
  const int64_t P = g.out_pixels(), groups = cl.groups, cog = wt.size(1);
  const at::Tensor padded = pad_channels_last(input.narrow(0, b0, nb), cpu::WorkspaceSlot::kPaddedInput);
  const T* padded_ptr = padded.const_data_ptr<T>();
  const T* offset_ptr = offset.const_data_ptr<T>() + b0 * offset.size(1) * P;
  const T* mask_ptr = g.use_mask ? mask.const_data_ptr<T>() + b0 * g.samples_per_image() : nullptr;
  const auto im2col_rows = cpu::deform_conv2d_loops<T>().im2col_rows;
  const at::Tensor out = output.narrow(0, b0, nb).view({nb, groups * cog, P});
  const bool round_columns = wt.scalar_type() != input.scalar_type();  // bfloat16 product
  for_each_column_tile<T>(cl, nb, input.options(), [&](const at::Tensor& sampled, int64_t b, int64_t p0) {
    const int64_t len = sampled.size(0);
    im2col_rows(cl, padded_ptr, offset_ptr, mask_ptr, b * P + p0, b * P + p0 + len, sampled.data_ptr<T>());
    at::Tensor columns = sampled;
    if (round_columns) {  // in cache: a cheap pass
      columns = cpu::workspace(cpu::WorkspaceSlot::kColumnTileLow, sampled.numel(), wt.options())
                    .view(sampled.sizes())
                    .copy_(sampled);
    }
    for (int64_t gi = 0; gi < groups; ++gi) {
      at::Tensor dst = out[b].narrow(0, gi * cog, cog).narrow(1, p0, len);  // [Co/g, len], row stride P
      const at::Tensor src = group_columns(columns, groups, gi).t();
      if (bias.defined()) {
        at::addmm_out(dst, bias.narrow(0, gi * cog, cog).unsqueeze(1), wt[gi], src);
      } else {
        at::mm_out(dst, wt[gi], src);
      }
    }
  });
}

at::Tensor forward_kernel(const at::Tensor& input_, const at::Tensor& offset_, const at::Tensor& weight_,
                          const std::optional<at::Tensor>& bias_, const std::optional<at::Tensor>& mask_,
                          int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                          int64_t dilation_h, int64_t dilation_w, int64_t groups, int64_t offset_groups,
                          int64_t border) {
  const DeformConv2dParams p{stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups, offset_groups, border};
  const auto out_size = check_deform_conv2d_args(input_, offset_, weight_, bias_, mask_, p);
  const auto ctype = compute_type(input_.scalar_type());
  const DeformConv2dOperands in(input_, offset_, weight_, mask_, ctype);
  const ChannelsLastGeometry cl{make_deform_conv2d_geometry(in.input, in.weight, mask_.has_value(), p, out_size),
                                groups};
  const int64_t n = in.input.size(0), co = in.weight.size(0);
  // bfloat16 (autocast's choice on the CPU): sampled in float32, multiplied as bfloat16
  // with float32 accumulation like a bfloat16 convolution (oneDNN runs it on the CPU's
  // bf16 dot-product instructions where present). Half: float32 throughout.
  const auto product_type = input_.scalar_type() == at::kBFloat16 ? at::kBFloat16 : ctype;
  at::Tensor output = at::empty({n, co, cl.g.out_h, cl.g.out_w}, in.input.options().dtype(product_type));
  const at::Tensor wt = taps_outer_weight(in.weight.to(product_type), groups);
  const at::Tensor bias = bias_.has_value() ? bias_->to(product_type).contiguous() : at::Tensor();
  const int64_t chunk = deform_conv2d_chunk_size(cl.g, n);
  AT_DISPATCH_FLOATING_TYPES(ctype, "dcn_det::deform_conv2d", [&] {
    const bool fused =
        use_fused_path(cl, co, at::elementSize(product_type), sizeof(scalar_t), std::min(chunk, n), /*forward=*/true);
    for (int64_t b0 = 0; b0 < n; b0 += chunk) {
      const int64_t nb = std::min(chunk, n - b0);
      if (fused) {
        forward_chunk_fused<scalar_t>(cl, in.input, in.offset, in.mask, wt, bias, b0, nb, output);
      } else {
        forward_chunk<scalar_t>(cl, in.input, in.offset, in.mask, wt, bias, b0, nb, output);
      }
    }
  });
  return output.to(input_.scalar_type());
}

struct BackwardBuffers {
  at::Tensor grad_input, grad_offset, grad_mask, grad_wt;
};

// The backward of one chunk: grad W' += grad_output @ columns, grad_columns =
// grad_output^T @ W', then per sample the offset/mask gradient (coordinate_grad) and
// finally the input gradient (col2im over the whole grad_columns matrix). Fused (small
// weights, as the forward): the first three run tile by tile while the tile of columns
// is in cache, each thread summing its own grad W' (added in thread order at the end);
// grad_columns still goes to the whole matrix, which col2im needs complete.
template <typename T>
void backward_chunk(const ChannelsLastGeometry& cl, const at::Tensor& grad_output, const at::Tensor& input,
                    const at::Tensor& offset, const at::Tensor& mask, const at::Tensor& wt, int64_t b0,
                    int64_t nb, bool fused, BackwardBuffers& out) {
  const DeformConv2dGeometry& g = cl.g;
  const int64_t P = g.out_pixels(), groups = cl.groups, co = grad_output.size(1), cog = co / groups;
  const int64_t row = cl.row_length();
  const at::Tensor padded = pad_channels_last(input.narrow(0, b0, nb), cpu::WorkspaceSlot::kPaddedInput);
  const T* padded_ptr = padded.const_data_ptr<T>();
  const T* offset_ptr = offset.const_data_ptr<T>() + b0 * offset.size(1) * P;
  const T* mask_ptr = g.use_mask ? mask.const_data_ptr<T>() + b0 * g.samples_per_image() : nullptr;
  T* grad_offset_ptr = out.grad_offset.mutable_data_ptr<T>() + b0 * offset.size(1) * P;
  T* grad_mask_ptr = g.use_mask ? out.grad_mask.mutable_data_ptr<T>() + b0 * g.samples_per_image() : nullptr;
  at::Tensor grad_columns = cpu::workspace(cpu::WorkspaceSlot::kColumns, nb * P * row, input.options())
                                .view({nb * P, row});
  const int64_t corner_bytes = nb * g.samples_per_image() * static_cast<int64_t>(sizeof(PaddedCorners<T>));
  auto* corners = reinterpret_cast<PaddedCorners<T>*>(
      cpu::workspace(cpu::WorkspaceSlot::kCorners, corner_bytes, input.options().dtype(at::kByte)).data_ptr());
  const auto& loops = cpu::deform_conv2d_loops<T>();

  if (fused) {
    const int64_t tasks = nb * column_tiles_per_image(cl, sizeof(T));
    const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), tasks));
    const at::Tensor partial = at::zeros({threads, groups, cog, row / groups}, out.grad_wt.options());
    const at::Tensor go_images = grad_output.narrow(0, b0, nb).view({nb, co, P});
    for_each_column_tile<T>(cl, nb, input.options(), [&](const at::Tensor& columns, int64_t b, int64_t p0) {
      const int64_t len = columns.size(0), r0 = b * P + p0;
      loops.im2col_rows(cl, padded_ptr, offset_ptr, mask_ptr, r0, r0 + len, columns.data_ptr<T>());
      const at::Tensor mine = partial[at::get_thread_num()];
      const at::Tensor go = go_images[b].narrow(1, p0, len);  // [Co, len], row stride P
      const at::Tensor grad_tile = grad_columns.narrow(0, r0, len);
      for (int64_t gi = 0; gi < groups; ++gi) {
        const at::Tensor go_g = go.narrow(0, gi * cog, cog);
        mine[gi].addmm_(go_g, group_columns(columns, groups, gi));
        at::Tensor dst = group_columns(grad_tile, groups, gi);
        at::mm_out(dst, go_g.t(), wt[gi]);
      }
      loops.coordinate_grad_rows(cl, padded_ptr, offset_ptr, mask_ptr, grad_tile.const_data_ptr<T>(), r0, r0 + len,
                                 grad_offset_ptr, grad_mask_ptr, corners);
    });
    out.grad_wt.add_(partial.sum(0));
  } else {
    at::Tensor& columns = grad_columns;  // the columns first, then their gradient in place
    loops.im2col(cl, padded_ptr, offset_ptr, mask_ptr, nb, columns.mutable_data_ptr<T>());
    // grad_output of the chunk as [Co, nb*P] (a view when nb == 1).
    const at::Tensor go = grad_output.narrow(0, b0, nb).view({nb, co, P}).transpose(0, 1).reshape({co, nb * P});
    for (int64_t gi = 0; gi < groups; ++gi) {
      out.grad_wt[gi].addmm_(go.narrow(0, gi * cog, cog), group_columns(columns, groups, gi));
    }
    for (int64_t gi = 0; gi < groups; ++gi) {
      at::Tensor dst = group_columns(grad_columns, groups, gi);
      at::mm_out(dst, go.narrow(0, gi * cog, cog).t(), wt[gi]);
    }
    loops.coordinate_grad(cl, padded_ptr, offset_ptr, mask_ptr, grad_columns.const_data_ptr<T>(), nb,
                          grad_offset_ptr, grad_mask_ptr, corners);
  }

  at::Tensor grad_padded = cpu::workspace(cpu::WorkspaceSlot::kPaddedGrad, padded.numel(), input.options())
                               .view(padded.sizes())
                               .zero_();
  loops.col2im(cl, grad_columns.const_data_ptr<T>(), corners, nb, grad_padded.mutable_data_ptr<T>());
  cpu::padded_nhwc_to_nchw(grad_padded.const_data_ptr<T>(), nb, g.channels, g.height, g.width,
                           out.grad_input.mutable_data_ptr<T>() + b0 * g.channels * g.plane());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward_kernel(
    const at::Tensor& grad_output_, const at::Tensor& input_, const at::Tensor& offset_,
    const at::Tensor& weight_, const std::optional<at::Tensor>& mask_, int64_t stride_h, int64_t stride_w,
    int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w, int64_t groups,
    int64_t offset_groups, int64_t border) {
  const DeformConv2dParams p{stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups, offset_groups, border};
  const auto out_size = check_deform_conv2d_args(input_, offset_, weight_, std::nullopt, mask_, p, &grad_output_);
  const auto dtype = input_.scalar_type();
  const auto ctype = compute_type(dtype);
  const DeformConv2dOperands in(input_, offset_, weight_, mask_, ctype);
  const at::Tensor grad_output = grad_output_.to(ctype).contiguous();
  const bool use_mask = mask_.has_value();
  const ChannelsLastGeometry cl{make_deform_conv2d_geometry(in.input, in.weight, use_mask, p, out_size), groups};
  const int64_t n = in.input.size(0);
  const at::Tensor wt = taps_outer_weight(in.weight, groups);

  BackwardBuffers out;
  out.grad_input = at::empty_like(in.input);
  out.grad_offset = at::empty_like(in.offset);  // every element is written
  out.grad_mask = use_mask ? at::empty_like(in.mask) : at::empty({0}, in.input.options());
  out.grad_wt = at::zeros_like(wt);
  const int64_t chunk = deform_conv2d_chunk_size(cl.g, n);
  AT_DISPATCH_FLOATING_TYPES(ctype, "dcn_det::_deform_conv2d_backward", [&] {
    const bool fused = use_fused_path(cl, in.weight.size(0), sizeof(scalar_t), sizeof(scalar_t), std::min(chunk, n),
                                      /*forward=*/false);
    for (int64_t b0 = 0; b0 < n; b0 += chunk) {
      backward_chunk<scalar_t>(cl, grad_output, in.input, in.offset, in.mask, wt, b0,
                               std::min(chunk, n - b0), fused, out);
    }
  });
  const auto& w = in.weight;
  const at::Tensor grad_weight = out.grad_wt.view({groups, w.size(0) / groups, cl.g.taps(), w.size(1)})
                                     .permute({0, 1, 3, 2})
                                     .contiguous()
                                     .view(w.sizes());
  const at::Tensor grad_bias = grad_output.sum({0, 2, 3});
  return {out.grad_input.to(dtype), out.grad_offset.to(dtype), grad_weight.to(dtype), grad_bias.to(dtype),
          out.grad_mask.to(dtype)};
}

}  // namespace

using HostDeformConv2d = DeformConv2dDeviceBackend<HostLauncher>;

TORCH_LIBRARY_IMPL(dcn_det, CPU, m) {
  m.impl("deform_conv2d", &RoutedKernel<&forward_kernel, &deform_conv2d_forward_kernel<HostDeformConv2d>>::call);
  m.impl("_deform_conv2d_backward",
         &RoutedKernel<&backward_kernel, &deform_conv2d_backward_kernel<HostDeformConv2d>>::call);
}

}  // namespace dcn_det
