"""Fixtures shared by the operator tests."""
import pytest
import torch


@pytest.fixture
def deterministic_algorithms():
    """torch.use_deterministic_algorithms(True) for one test, restored afterwards."""
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)
