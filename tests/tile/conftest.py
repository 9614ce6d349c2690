"""Fixtures of the tile IR / renderer tests."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def num_threads(request):
    """torch (and so the kernels' OpenMP pool) at 1 and 2 threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)
