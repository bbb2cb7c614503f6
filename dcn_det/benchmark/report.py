"""The output: the table of rows (ratios to each case's anchor), the legend and
thread-scaling lines under it, and the environment lines above it."""
import datetime
import os
import platform
from typing import List, Optional, Sequence, Tuple

import torch
import torchvision

from dcn_det.ops import available_cpu_isas, cpu_isa

from .timing import ONE_THREAD, Row, Settings, fmt_ms


def thread_scaling(rows: Sequence[Row]) -> List[str]:
    """'case: impl 1 -> N threads: x fwd, y fwd+bwd' for each one-thread row."""
    lines = []
    threads = torch.get_num_threads()
    for row in rows:
        if not row.impl.endswith(ONE_THREAD):
            continue
        base = row.impl[: -len(ONE_THREAD)].strip()
        match = [r for r in rows if (r.group, r.case, r.device, r.dtype, r.impl) ==
                 (row.group, row.case, row.device, row.dtype, base)]
        if not match:
            continue
        speedups = [f"{one / many:.2f}x {name}" if one and many else f"n/a {name}"
                    for name, one, many in (("fwd", row.fwd_ms, match[0].fwd_ms),
                                            ("fwd+bwd", row.fwd_bwd_ms, match[0].fwd_bwd_ms))]
        lines.append(f"thread scaling {row.case} {row.device} {row.dtype}, {base} 1 -> {threads} threads: "
                     + ", ".join(speedups))
    return lines


def _fmt_ratio(value: Optional[float], anchor: Optional[float]) -> str:
    if value is None or not anchor:
        return "n/a"
    return f"{value / anchor:.2f}x"


def _fmt_check(value: Optional[float], row: Row) -> str:
    if row.is_reference:
        return "(ref)"
    return "" if value is None else f"{value:.1e}"


TABLE_COLUMNS = [  # (header, right-aligned?)
    ("group", False), ("case (NxCxHxW)", False), ("device", False), ("dtype", False), ("impl", False),
    ("fwd ms", True), ("fwd ratio", True), ("fwd+bwd ms", True), ("fwd+bwd ratio", True),
    ("fwd Δ (abs)", True), ("grad Δ (rel)", True),
]


def table_cells(rows: Sequence[Row]) -> List[List[str]]:
    """Rows as text cells; ratios relative to the anchor row of the same case,
    device and dtype (left "n/a" when the anchor failed)."""
    anchors = {(r.group, r.case, r.device, r.dtype): r for r in rows if r.anchor}
    cells = []
    for r in rows:
        a = anchors.get((r.group, r.case, r.device, r.dtype))
        cells.append([
            r.group, r.case, r.device, r.dtype, r.impl,
            fmt_ms(r.fwd_ms), _fmt_ratio(r.fwd_ms, a.fwd_ms if a else None),
            fmt_ms(r.fwd_bwd_ms), _fmt_ratio(r.fwd_bwd_ms, a.fwd_bwd_ms if a else None),
            _fmt_check(r.check_fwd, r), _fmt_check(r.check_grad, r),
        ])
    return cells


def format_table(rows: Sequence[Row], markdown: bool) -> str:
    headers = [h for h, _ in TABLE_COLUMNS]
    right = [r for _, r in TABLE_COLUMNS]
    cells = table_cells(rows)
    if markdown:
        def md(values: Sequence[str]) -> str:
            return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

        lines = [md(headers), "|" + "|".join("---:" if r else ":---" for r in right) + "|"]
        lines += [md(c) for c in cells]
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(headers, *cells)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    previous = None
    for row, c in zip(rows, cells):
        key = (row.group, row.case, row.device, row.dtype)
        if previous is not None and key != previous:
            out.append("")  # blank line between cases
        previous = key
        out.append(line(c))
    return "\n".join(out)


def legend(rows: Sequence[Row]) -> List[str]:
    anchors = sorted({(r.group, r.impl) for r in rows if r.anchor})
    notes = [f"{r.impl} {r.case} {r.device} {r.dtype}: {r.note}" for r in rows if r.note]
    lines = [
        "times: median wall time per call in ms; fwd = forward without autograd, "
        "fwd+bwd = forward then backward of a fixed random gradient, all inputs requiring grad",
        "ratio = time / time of the case's anchor ("
        + ", ".join(f"{g}: {impl}" for g, impl in anchors) + "), same device and dtype, same run",
        "fwd Δ (abs) = max abs difference of the forward output vs torchvision float32 on the same inputs; "
        "grad Δ (rel) = max over input/offset/mask/weight/bias grads of max abs difference / max abs "
        "reference grad; (ref) = the reference itself",
    ]
    if any(r.impl.endswith("onnxruntime") for r in rows):
        lines.append("model group, onnxruntime rows: the same model and weights exported with dcn_det.onnx "
                     "(whole detector: TracingAdapter + TorchScript-based exporter, without the final rescaling "
                     "to the original image size; backbone: dynamo exporter), onnxruntime CPU with torch's thread "
                     "count; fwd Δ of the backbone row = max abs feature difference vs PyTorch")
    lines += [f"n/a: {n}" for n in notes]
    return lines


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(settings: Settings, argv: Sequence[str]) -> List[Tuple[str, str]]:
    try:
        nproc = len(os.sched_getaffinity(0))  # what `nproc` prints
    except AttributeError:
        nproc = os.cpu_count() or 0
    info = [
        ("date", datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
        ("command", " ".join(["python", "tools/benchmark_ops.py", *argv])),
        ("cpu", f"{cpu_model()} ({platform.machine()}), nproc {nproc}"),
        ("torch", f"{torch.__version__}, torchvision {torchvision.__version__}, "
                  f"threads {torch.get_num_threads()}"),
        ("dcn_det CPU loops", f"{cpu_isa()} (of {', '.join(available_cpu_isas())}; rows 'dcn_det [isa]' force another)"),
    ]
    if "cuda" in settings.devices:
        info.append(("gpu", f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda}, "
                            f"cuDNN {torch.backends.cudnn.version()}, TF32 off, cudnn.benchmark on)"))
    info.append(("repeats", ", ".join(f"{d}: {settings.warmup[d]} warm-up + {settings.repeats[d]} timed (median)"
                                      for d in settings.devices)))
    if hasattr(os, "getloadavg"):
        info.append(("load average at start", "%.2f %.2f %.2f" % os.getloadavg()))
    return info


def print_report(info: Sequence[Tuple[str, str]], rows: Sequence[Row], markdown: bool) -> None:
    """Environment lines, the table, then the legend and thread-scaling lines (stdout)."""
    if markdown:
        print("\n".join(f"- {k}: {v}" for k, v in info))
        print()
        print(format_table(rows, markdown=True))
        print()
        print("\n".join(f"- {line}" for line in legend(rows) + thread_scaling(rows)))
    else:
        print("\n".join(f"{k}: {v}" for k, v in info))
        print()
        print(format_table(rows, markdown=False))
        print()
        print("\n".join(legend(rows) + thread_scaling(rows)))
