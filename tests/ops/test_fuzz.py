"""A fixed-seed batch of the fuzzer (fuzz.py): 1000 random calls of each operator, forward
and backward, on the CPU kernels and on the device algorithm run on the host. Any number
more: ``python -m tests.ops.fuzz_cli --count N --seed S``."""
import collections

import pytest

from .devices import DEVICES
from .fuzz import CHECKS, fuzz

CALLS = 1000


@pytest.mark.parametrize("device", [d for d in DEVICES if d.id in ("cpu", "device_path")])
@pytest.mark.parametrize("op", sorted(CHECKS))
def test_random_calls_raise_naming_the_argument_or_match_the_reference(op, device):
    # The device_path variant runs a different seed: more distinct calls for the same time.
    outcomes = fuzz(CALLS if device == "cpu" else CALLS // 2, seed=2026 + (device != "cpu"), ops=(op,))
    kinds = collections.Counter(o.kind for o in outcomes)
    failures = [o.detail for o in outcomes if o.kind == "FAIL"]
    assert not failures, f"{len(failures)} of {len(outcomes)} calls failed, e.g.:\n" + "\n".join(failures[:10])
    # The batch must exercise both outcomes and compare gradients, not only run.
    assert kinds["rejected"] > 0.05 * len(outcomes) and kinds["match"] > 0.5 * len(outcomes), kinds
    compared = collections.Counter(c for o in outcomes for c in o.compared)
    assert compared["output"] > 0.4 * len(outcomes) and compared["grad_input"] > 0.3 * len(outcomes), compared
    assert compared["grad_offset"] > 0.1 * len(outcomes), compared
