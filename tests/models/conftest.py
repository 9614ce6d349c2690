"""Model tests run on one intra-op thread (`examples.*` is put on sys.path by tests/conftest.py)."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: the machine is shared and 2-thread runs stall when the other core is
    busy (see DESIGN.md). Restored afterwards so that other test folders keep their setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
