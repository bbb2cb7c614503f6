"""The session header says which CPU loop variants run: results of model-level tests may
differ in the last bits between them (tools/test_isa_variants.sh reruns those tests under
each one the CPU supports)."""
import os

import torch


def pytest_report_header(config):
    from dcn_det.ops import available_cpu_isas, cpu_isa

    requested = os.environ.get("ATEN_CPU_CAPABILITY", "unset")
    return (f"CPU loops: dcn_det {cpu_isa()} (available: {', '.join(available_cpu_isas())}), "
            f"ATen {torch.backends.cpu.get_cpu_capability()}; ATEN_CPU_CAPABILITY={requested}; "
            f"torch threads: {torch.get_num_threads()}")
