"""Benchmarks of dcn_det's compiled operators against torchvision and a dense floor, and of
detectors built with them; the command line is ``tools/benchmark_ops.py``.

Layout: a benchmark *group* is a function ``(Settings) -> Iterator[Row]`` listed in
GROUPS. Rows are (group, case, impl, device, dtype, fwd ms, fwd+bwd ms, checks);
one printer turns any list of rows into the table. Groups: deform_conv2d,
deform_psroi_pool (vs torchvision.ops.ps_roi_align / roi_align) and model (a Faster
R-CNN R-50-FPN inference and training iteration, plain vs deformable, and the same
models exported to ONNX and run in onnxruntime on the CPU).

- timing.py: Row, Settings, how a time is measured and checked, the variant rows
- operators.py: the deform_conv2d and deform_psroi_pool groups
- models.py: the model group and its onnxruntime rows
- report.py: the table, legend, thread-scaling and environment lines

Needs torchvision (the reference implementation); detectron2 only for the model group,
imported when that group runs. Nothing else in dcn_det imports this package.
"""
from typing import Callable, Dict, Iterator

from .models import bench_model
from .operators import DCN_QUICK_SHAPES, DCN_SHAPES, bench_deform_conv2d, bench_deform_psroi_pool
from .report import environment, format_table, legend, print_report, thread_scaling
from .timing import Row, Settings, progress

# Registry of benchmark groups, run in this order. Add new groups here.
GROUPS: Dict[str, Callable[[Settings], Iterator[Row]]] = {
    "deform_conv2d": bench_deform_conv2d,
    "deform_psroi_pool": bench_deform_psroi_pool,
    "model": bench_model,
}

__all__ = [
    "DCN_QUICK_SHAPES", "DCN_SHAPES", "GROUPS", "Row", "Settings", "environment", "format_table", "legend",
    "print_report", "progress", "thread_scaling",
]
