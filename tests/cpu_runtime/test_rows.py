"""Row softmax, reductions, expand ops, compare/select, TTRI, TTRANS and tile aliasing on the CPU
target, against torch."""
from __future__ import annotations

import pytest
import torch

from pto_dynamo.ascend_backend.cpu import load_region
from tests.cpu_runtime.conftest import build_kernels

TOL = dict(rtol=1.3e-6, atol=1e-5)


@pytest.fixture(scope="module")
def lib(cache_dir):
    return build_kernels("rows")


@pytest.mark.parametrize("rows,cols", [(1, 1), (8, 256), (19, 100), (77, 255)])
@pytest.mark.parametrize("block_num", [1, 3, 64])
def test_row_softmax(lib, num_threads, rows, cols, block_num):
    x = torch.randn(rows, cols) * 4
    out = torch.empty_like(x)
    load_region(lib, "region_softmax", block_num)([x, out], [rows, cols])
    torch.testing.assert_close(out, torch.softmax(x, dim=1), **TOL)


@pytest.mark.parametrize("op,ref", [(0, lambda x: x.sum(1)), (1, lambda x: x.amax(1)), (2, lambda x: x.amin(1)),
                                    (3, lambda x: x.sum(1)), (4, lambda x: x.amax(1)), (5, lambda x: x.amin(1))])
@pytest.mark.parametrize("rows,cols", [(1, 3), (13, 256), (21, 77)])
def test_row_reduce(lib, op, ref, rows, cols):
    x = torch.randn(rows, cols)
    out = torch.full((rows,), float("nan"))
    load_region(lib, "region_row_reduce", 3)([x, out], [rows, cols, op])
    torch.testing.assert_close(out, ref(x), **TOL)


@pytest.mark.parametrize("op,ref", [(0, lambda x: x.sum(0)), (1, lambda x: x.amax(0)), (2, lambda x: x.amin(0))])
@pytest.mark.parametrize("rows,cols", [(1, 5), (64, 64), (33, 150)])
def test_col_reduce(lib, op, ref, rows, cols):
    x = torch.randn(rows, cols)
    out = torch.full((cols,), float("nan"))
    load_region(lib, "region_col_reduce", 3)([x, out], [rows, cols, op])
    torch.testing.assert_close(out, ref(x), **TOL)


EXPAND_OPS = {0: torch.add, 1: torch.sub, 2: torch.mul, 3: torch.div, 4: torch.maximum, 5: torch.minimum,
              6: lambda a, b: torch.exp(a - b), 7: lambda a, b: b.expand_as(a)}


@pytest.mark.parametrize("op", list(EXPAND_OPS))
@pytest.mark.parametrize("mode", [1, 2])
def test_row_expand(lib, op, mode):
    rows, cols = 21, 100
    x, v = torch.randn(rows, cols), torch.randn(rows)
    out = torch.empty_like(x)
    load_region(lib, "region_row_expand", 3)([x, v, out], [rows, cols, op, mode])
    torch.testing.assert_close(out, EXPAND_OPS[op](x, v[:, None]), **TOL)


@pytest.mark.parametrize("op", list(EXPAND_OPS))
def test_col_expand(lib, op):
    rows, cols = 21, 100
    x, w = torch.randn(rows, cols), torch.randn(cols)
    out = torch.empty_like(x)
    load_region(lib, "region_col_expand", 3)([x, w, out], [rows, cols, op])
    torch.testing.assert_close(out, EXPAND_OPS[op](x, w[None, :]), **TOL)


CMP = [torch.eq, torch.ne, torch.lt, torch.le, torch.gt, torch.ge]   # CmpMode order EQ NE LT LE GT GE


@pytest.mark.parametrize("mode", range(6))
@pytest.mark.parametrize("rows,cols", [(8, 64), (13, 70), (3, 5)])
def test_cmp_sel(lib, mode, rows, cols):
    x = torch.randint(-2, 3, (rows, cols)).float() * 0.25
    y = torch.randint(-2, 3, (rows, cols)).float() * 0.25
    x.view(-1)[::7] = float("nan")        # C semantics: NE true for a nan operand, the rest false
    y.view(-1)[3::11] = float("nan")      # (in the 8-column vector path and in ragged tails)
    sel, sels = torch.empty_like(x), torch.empty_like(x)
    load_region(lib, "region_cmp_sel", 3)([x, y, sel, sels], [rows, cols, mode])
    exact = {"rtol": 0, "atol": 0, "equal_nan": True}
    torch.testing.assert_close(sel, torch.where(CMP[mode](x, y), x, y), **exact)
    torch.testing.assert_close(sels, torch.where(CMP[mode](x, torch.tensor(0.25)), x, torch.tensor(-7.0)), **exact)


@pytest.mark.parametrize("upper", [0, 1])
@pytest.mark.parametrize("diagonal", [-2, 0, 3])
def test_ttri(lib, upper, diagonal):
    rows, cols = 9, 13
    out = torch.full((rows, cols), float("nan"))
    load_region(lib, "region_tri", 1)([out], [rows, cols, diagonal, upper])
    ones = torch.ones(rows, cols)
    expected = torch.triu(ones, diagonal) if upper else torch.tril(ones, diagonal)
    assert torch.equal(out, expected)


@pytest.mark.parametrize("rows,cols", [(16, 64), (37, 130), (1, 3)])
def test_ttrans(lib, rows, cols):
    x = torch.randn(rows, cols)
    out = torch.empty(cols, rows)
    load_region(lib, "region_trans", 3)([x, out], [rows, cols])
    assert torch.equal(out, x.t())


def test_treshape_and_tsubview_alias(lib):
    x = torch.randn(8, 64)
    out_max, window = torch.empty(8), torch.empty(3, 20)
    load_region(lib, "region_alias", 2)([x, out_max, window], [])
    assert torch.equal(out_max, 2 * x.amax(1))
    assert torch.equal(window, x[2:5, 16:36])
