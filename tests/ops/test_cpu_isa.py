"""The CPU loops compiled per instruction set (csrc/cpu/isa/): each variant this machine can
run is forced in turn and fuzzed against the references (tests/ops/fuzz.py: random shapes,
groups, dtypes, layouts and extreme values; forward and every gradient), and the choice
follows ATEN_CPU_CAPABILITY. test_fuzz.py covers the variant selected by default."""
import collections
import os
import platform
import shutil
import subprocess
import sys

import pytest

from dcn_det.ops import available_cpu_isas, cpu_isa
from dcn_det.ops._cpu_isa import forced_cpu_isa

from .fuzz import CHECKS, fuzz

ISAS = ("baseline", "avx2", "avx512")
CALLS = 1000


def _require(isa):
    if isa not in available_cpu_isas():
        pytest.skip(f"{isa} loops: not built or not supported by this CPU (available: {available_cpu_isas()})")


@pytest.mark.parametrize("op", sorted(CHECKS))
@pytest.mark.parametrize("isa", ISAS)
def test_each_instruction_set_matches_the_reference_on_random_calls(isa, op):
    _require(isa)
    selected = cpu_isa()
    with forced_cpu_isa(isa):
        assert cpu_isa() == isa
        outcomes = fuzz(CALLS, seed=4000 + ISAS.index(isa), ops=(op,))
    assert cpu_isa() == selected  # the choice is restored
    failures = [o.detail for o in outcomes if o.kind == "FAIL"]
    assert not failures, f"{isa}: {len(failures)} of {len(outcomes)} calls failed, e.g.:\n" + "\n".join(failures[:10])
    kinds = collections.Counter(o.kind for o in outcomes)
    assert kinds["match"] > 0.4 * len(outcomes) and kinds["rejected"] > 0.05 * len(outcomes), kinds


def test_forcing_an_unavailable_instruction_set_is_an_error():
    with pytest.raises(ValueError, match="not an instruction set this build and CPU can run"):
        with forced_cpu_isa("sse9"):
            pass


@pytest.mark.parametrize("capability, expected", [("default", "baseline"), ("avx2", "avx2"), ("avx512", "avx512")])
def test_aten_cpu_capability_caps_the_choice(capability, expected):
    _require(expected)
    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability)
    out = subprocess.run([sys.executable, "-c", "from dcn_det.ops import cpu_isa; print(cpu_isa())"], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[-1] == expected


@pytest.mark.skipif(platform.machine() != "x86_64" or not shutil.which("objdump"), reason="x86-64 with objdump only")
def test_only_the_per_isa_loops_contain_wide_vector_instructions():
    # The build's baseline is SSE2: an AVX (ymm/zmm) instruction anywhere else would be an
    # illegal instruction on a CPU without it (e.g. an inline helper compiled inside a target
    # pragma and picked by the linker for every caller).
    from dcn_det import _C

    listing = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", _C.__file__], capture_output=True,
                             text=True, check=True).stdout
    wide, function = set(), None
    for line in listing.splitlines():
        if line.endswith(">:"):
            function = line.split("<", 1)[1][:-2]
        elif "%ymm" in line or "%zmm" in line:
            wide.add(function)
    assert wide, "no AVX code at all: the avx2/avx512 loops were not compiled for their targets"
    outside = sorted(f for f in wide if "dcn_det::cpu::avx2::" not in f and "dcn_det::cpu::avx512::" not in f)
    assert not outside, outside[:10]
