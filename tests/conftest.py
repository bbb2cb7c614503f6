"""The session header says which CPU loop variants run: results of model-level tests may
differ in the last bits between them (tools/test_isa_variants.sh reruns those tests under
each one the CPU supports)."""
import os

import pytest

import torch


def pytest_configure(config):
    """Under pytest-xdist (make test runs one worker per CPU) each worker gets its share of
    the intra-op threads, so that the workers do not oversubscribe the cores; subprocesses
    started by a test inherit it through OMP_NUM_THREADS. Tests that compare thread counts
    set their own (the two_threads fixture)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, torch.get_num_threads() // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


@pytest.fixture
def two_threads():
    """At least two intra-op threads for the test (even in a one-thread xdist worker or on a
    one-core machine: the loops split their work by thread count, not by core)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(max(2, previous))
    yield torch.get_num_threads()
    torch.set_num_threads(previous)


def pytest_report_header(config):
    from dcn_det.ops import available_cpu_isas, cpu_isa

    requested = os.environ.get("ATEN_CPU_CAPABILITY", "unset")
    return (f"CPU loops: dcn_det {cpu_isa()} (available: {', '.join(available_cpu_isas())}), "
            f"ATen {torch.backends.cpu.get_cpu_capability()}; ATEN_CPU_CAPABILITY={requested}; "
            f"torch threads: {torch.get_num_threads()}")
