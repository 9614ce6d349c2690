"""Per-opcode interpreter rules: what each instruction does to tiles and global tensors.

Each rule receives the instruction and the block's Machine (interpreter.py). Values are read in
the compute dtype (fp32 for floats) and rounded once when written.
"""
from __future__ import annotations

import functools

import torch

from pto_dynamo.lowering.tile import ops  # noqa: F401  (the opcode table the rules attach to)
from pto_dynamo.lowering.tile.dtypes import compute_dtype
from pto_dynamo.lowering.tile.specs import interp_rule, op_spec, ops_of_family

_REDUCE = {"sum": lambda x, dim: x.sum(dim=dim, keepdim=True),
           "max": lambda x, dim: x.amax(dim=dim, keepdim=True),
           "min": lambda x, dim: x.amin(dim=dim, keepdim=True)}


@interp_rule("TLOAD")
def _load(inst, m) -> None:
    st = m.state(inst.outs[0])
    st.storage.zero_()   # CPU-simulator pad: the whole tile, then the window
    src = m.view(inst.ins[0])
    st.storage[: src.shape[0], : src.shape[1]] = src


@interp_rule("TSTORE")
def _store(inst, m) -> None:
    dst = m.view(inst.outs[0])
    st = m.state(inst.ins[0])
    dst.copy_(st.storage[: dst.shape[0], : dst.shape[1]].to(dst.dtype))


@interp_rule(*ops_of_family("binary"))
def _binary(inst, m) -> None:
    fn = op_spec(inst.op).payload
    m.write(inst.outs[0], fn(m.read(inst.ins[0]), m.read(inst.ins[1])))


@interp_rule(*ops_of_family("scalar"))
def _scalar(inst, m) -> None:
    fn = op_spec(inst.op).payload
    src = m.read(inst.ins[0])
    value = m.scalar(inst.ins[1], m.state(inst.ins[0]).decl.dtype.torch_dtype)
    if not src.is_floating_point():
        value = int(value)
        if inst.op == "TDIVS":                           # integer tiles divide as C does
            fn = functools.partial(torch.div, rounding_mode="trunc")
    m.write(inst.outs[0], fn(src, value))


@interp_rule(*ops_of_family("unary"))
def _unary(inst, m) -> None:
    m.write(inst.outs[0], op_spec(inst.op).payload(m.read(inst.ins[0])))


@interp_rule("TEXPANDS")
def _fill(inst, m) -> None:
    st = m.state(inst.outs[0])
    value = m.scalar(inst.ins[0], st.decl.dtype.torch_dtype)
    m.write(inst.outs[0], torch.tensor(value, dtype=compute_dtype(st.decl.dtype)))


@interp_rule("MGATHER")
def _gather(inst, m) -> None:
    """Row: dst[r, :] = table[idx[0, r], :]; Elem: dst[r, c] = table_flat[idx[r, c]] (row-major
    over the view's rows x cols)."""
    table = m.view(inst.ins[0])
    st = m.state(inst.outs[0])
    elem = inst.attr("coalesce", "Row") == "Elem"
    if elem:
        idx = m.read(inst.ins[1])[:st.valid_rows, :st.valid_cols].long()
        table = table.reshape(-1, 1)                     # table_flat, one element per "row"
    else:
        idx = m.read(inst.ins[1])[0, :st.valid_rows].long()
    n = table.shape[0]
    oob = inst.attr("oob", "Undefined")
    if oob == "Clamp":
        idx = idx.clamp(0, n - 1)
    elif oob == "Wrap":
        idx = idx.remainder(n)
    elif oob == "Undefined" and bool(((idx < 0) | (idx >= n)).any()):
        raise IndexError(f"MGATHER: index out of [0, {n}) with oob=Undefined")
    out = table[idx.clamp(0, n - 1)]                     # Row: [R, width]; Elem: [R, C, 1]
    if oob == "Zero":
        out = torch.where(((idx >= 0) & (idx < n)).unsqueeze(-1), out, torch.zeros((), dtype=out.dtype))
    m.write(inst.outs[0], out.squeeze(-1) if elem else out)


@interp_rule("TCI")
def _iota(inst, m) -> None:
    st = m.state(inst.outs[0])
    start = int(m.scalar(inst.ins[0]))
    k = torch.arange(st.valid_cols, dtype=torch.int64)
    values = start - k if inst.attr("descending", False) else start + k
    m.write(inst.outs[0], values.reshape(1, -1), rows=1)


@interp_rule("TTRI")
def _triangle(inst, m) -> None:
    """1 where column c <= row r + d (lower) or c >= r + d (upper), else 0, over the valid region."""
    st = m.state(inst.outs[0])
    d = int(m.scalar(inst.ins[0]))
    r = torch.arange(st.valid_rows).unsqueeze(1)
    c = torch.arange(st.valid_cols).unsqueeze(0)
    on = c >= r + d if inst.attr("upper", False) else c <= r + d
    m.write(inst.outs[0], on.to(torch.float32))


def _round(x: torch.Tensor, mode: str, to_float: bool) -> torch.Tensor:
    if to_float or mode in ("CAST_RINT", "CAST_ODD"):   # float targets round to nearest even on write
        return x if to_float else torch.round(x)
    if mode == "CAST_ROUND":                           # half away from zero
        return torch.sign(x) * torch.floor(x.abs() + 0.5)
    if mode == "CAST_FLOOR":
        return torch.floor(x)
    if mode == "CAST_CEIL":
        return torch.ceil(x)
    return torch.trunc(x)                              # CAST_TRUNC / CAST_NONE: the C++ cast


@interp_rule("TCVT")
def _convert(inst, m) -> None:
    dst = m.state(inst.outs[0])
    src = m.read(inst.ins[0])
    mode = inst.attr("round", "CAST_RINT")
    to_float = dst.decl.dtype.is_float
    if src.is_floating_point():
        src = _round(src, mode, to_float)
        if dst.decl.dtype.torch_dtype == torch.bfloat16 and mode == "CAST_TRUNC":
            # truncate to bf16: keep the top 16 bits of the fp32 pattern (then the write is exact)
            src = (src.float().view(torch.int32) & -65536).view(torch.float32)
    m.write(inst.outs[0], src)


@interp_rule("TMOV")
def _move(inst, m) -> None:
    m.write(inst.outs[0], m.read(inst.ins[0]))


@interp_rule("TEXTRACT")
def _extract(inst, m) -> None:
    rows, cols = m.valid(inst.outs[0])
    row, col = inst.attr("row", 0), inst.attr("col", 0)
    src = m.state(inst.ins[0])
    window = src.storage[row:row + rows, col:col + cols].to(compute_dtype(src.decl.dtype))
    m.write(inst.outs[0], window)


@interp_rule(*ops_of_family("rowreduce"))
def _row_reduce(inst, m) -> None:
    src = m.read(inst.ins[0])
    value = _REDUCE[op_spec(inst.op).payload](src, 1)
    m.write(inst.outs[0], value, rows=src.shape[0], cols=1)


@interp_rule(*ops_of_family("colreduce"))
def _col_reduce(inst, m) -> None:
    src = m.read(inst.ins[0])
    value = _REDUCE[op_spec(inst.op).payload](src, 0)
    m.write(inst.outs[0], value, rows=1, cols=src.shape[1])


def _per_row(m, name: str, rows: int) -> torch.Tensor:
    """Column 0 of the first `rows` rows: the per-row operand of a row-expand op."""
    return m.read_region(name, rows, 1)


def _per_col(m, name: str, cols: int) -> torch.Tensor:
    return m.read_region(name, 1, cols)


@interp_rule("TROWEXPAND")
def _row_expand(inst, m) -> None:
    rows, cols = m.valid(inst.outs[0])
    m.write(inst.outs[0], _per_row(m, inst.ins[0], rows).expand(rows, cols))


@interp_rule(*ops_of_family("rowexpand_binary"))
def _row_expand_binary(inst, m) -> None:
    rows, _ = m.valid(inst.outs[0])
    fn = op_spec(inst.op).payload
    m.write(inst.outs[0], fn(m.read(inst.ins[0]), _per_row(m, inst.ins[1], rows)))


@interp_rule("TMULS_ROWMAX")
def _muls_rowmax(inst, m) -> None:
    dst, mx = inst.outs
    src = m.read(inst.ins[0])
    m.write(dst, src * m.scalar(inst.ins[1], m.state(inst.ins[0]).decl.dtype.torch_dtype))
    scaled = m.read(dst)
    m.write(mx, scaled.amax(dim=1, keepdim=True), rows=scaled.shape[0], cols=1)


@interp_rule("TROWEXPANDEXPDIF_ROWSUM")
def _expdif_rowsum(inst, m) -> None:
    dst, total = inst.outs
    rows, _ = m.valid(dst)
    p = torch.exp(m.read(inst.ins[0]) - _per_row(m, inst.ins[1], rows))
    m.write(dst, p)                               # rounded to dst's type; the sum is of p itself
    m.write(total, p.sum(dim=1, keepdim=True), rows=rows, cols=1)


@interp_rule("TROWEXPANDMUL_ADD")
def _rowexpand_mul_add(inst, m) -> None:
    rows, _ = m.valid(inst.outs[0])
    a, vec, b = inst.ins
    m.write(inst.outs[0], m.read(a) * _per_row(m, vec, rows) + m.read(b))


@interp_rule("TMUL_ROWSUM")
def _mul_rowsum(inst, m) -> None:
    dst, total = inst.outs
    m.write(dst, m.read(inst.ins[0]) * m.read(inst.ins[1]))
    product = m.read(dst)
    m.write(total, product.sum(dim=1, keepdim=True), rows=product.shape[0], cols=1)


@interp_rule("TROWEXPANDMUL_COLEXPANDMUL")
def _rowexpand_colexpand_mul(inst, m) -> None:
    rows, cols = m.valid(inst.outs[0])
    a, row_vec, col_vec = inst.ins
    m.write(inst.outs[0], m.read(a) * _per_row(m, row_vec, rows) * _per_col(m, col_vec, cols))


@interp_rule("TCOLEXPAND")
def _col_expand(inst, m) -> None:
    rows, cols = m.valid(inst.outs[0])
    m.write(inst.outs[0], _per_col(m, inst.ins[0], cols).expand(rows, cols))


@interp_rule(*ops_of_family("colexpand_binary"))
def _col_expand_binary(inst, m) -> None:
    _, cols = m.valid(inst.outs[0])
    fn = op_spec(inst.op).payload
    m.write(inst.outs[0], fn(m.read(inst.ins[0]), _per_col(m, inst.ins[1], cols)))


@interp_rule("TMATMUL", "TMATMUL_ACC")
def _matmul(inst, m) -> None:
    if inst.op == "TMATMUL_ACC":
        acc_in, left, right = inst.ins
    else:
        acc_in, (left, right) = None, inst.ins
    a, b = m.read(left), m.read(right)
    rows, k = a.shape
    cols = m.valid(right)[1]
    product = a.to(torch.float64 if a.is_floating_point() else torch.int64) @ \
        b[:k, :cols].to(torch.float64 if b.is_floating_point() else torch.int64)
    if acc_in is not None:
        product = product + m.read_region(acc_in, rows, cols).to(product.dtype)
    m.write(inst.outs[0], product, rows=rows, cols=cols)


@interp_rule("TRESHAPE")
def _reshape(inst, m) -> None:
    """dst takes src's bytes (an alias); dst keeps the valid region of its declaration."""
    dst, src = m.state(inst.outs[0]), m.state(inst.ins[0])
    dst.flat = src.flat.view(dst.decl.dtype.torch_dtype)


_CMP = {"EQ": torch.eq, "NE": torch.ne, "LT": torch.lt, "LE": torch.le, "GT": torch.gt, "GE": torch.ge}
_BIT_WEIGHTS = torch.tensor([1 << b for b in range(8)], dtype=torch.int32)


@interp_rule("TCMP", "TCMPS")
def _compare(inst, m) -> None:
    """Pack the predicate over the source's valid region: bit c % 8 of byte c // 8 of mask row r."""
    a = m.read(inst.ins[0])
    if inst.op == "TCMP":
        b = m.read(inst.ins[1])
    else:
        b = torch.tensor(m.scalar(inst.ins[1], m.state(inst.ins[0]).decl.dtype.torch_dtype), dtype=a.dtype)
    pred = _CMP[inst.attr("mode")](a, b)
    rows, cols = pred.shape
    nbytes = -(-cols // 8)
    bits = torch.zeros(rows, nbytes * 8, dtype=torch.int32)
    bits[:, :cols] = pred.to(torch.int32)
    packed = (bits.view(rows, nbytes, 8) * _BIT_WEIGHTS).sum(-1)
    m.state(inst.outs[0]).storage[:rows, :nbytes] = packed.to(torch.uint8)


def _mask_bits(m, name: str, rows: int, cols: int) -> torch.Tensor:
    raw = m.state(name).storage[:rows, : -(-cols // 8)].to(torch.int32)
    bits = (raw.unsqueeze(-1) >> torch.arange(8, dtype=torch.int32)) & 1
    return bits.reshape(rows, -1)[:, :cols].bool()


@interp_rule("TSEL", "TSELS")
def _select(inst, m) -> None:
    rows, cols = m.valid(inst.outs[0])
    on = _mask_bits(m, inst.ins[0], rows, cols)
    a = m.read_region(inst.ins[1], rows, cols)
    if inst.op == "TSEL":
        b = m.read_region(inst.ins[2], rows, cols)
    else:
        b = torch.tensor(m.scalar(inst.ins[2], m.state(inst.ins[1]).decl.dtype.torch_dtype), dtype=a.dtype)
    m.write(inst.outs[0], torch.where(on, a, b))
