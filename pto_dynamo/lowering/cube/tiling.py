"""Tile a batched matmul into a cube TileProgram.

    for t in tiles(batch x ceil(M/Mt) x ceil(N/Nt)), chunked over blocks:     (SPMD)
        acc[Mt, Nt] (Acc, f32)
        for k0 in 0, Kt, 2 Kt, ... < K:                                         (K loop)
            TLOAD  ma[Mt, Kt] (Mat)  <- a window   ND -> Nz, or DN -> Zn for a transposed a
            TLOAD  mb[Kt, Nt] (Mat)  <- b window   ND -> Nz, or DN -> Zn for a transposed b
            TMOV   la (Left) <- ma;  TMOV rb (Right) <- mb
            TMATMUL acc, la, rb        (first K step)   /  TMATMUL_ACC acc, acc, la, rb
        TSTORE c window <- acc        (f32 -> the result dtype)

The first K step is peeled so that it starts the accumulator. Tile sizes come from the target's
capacities (Left, Right, Acc, Mat); the sizes, strides and offsets are runtime scalars, so one
source serves every M (the token count). Ragged M/N/K tails are valid regions.

Operands in place. A Mat tile of a tensor the kernel does not write is loaded with
`in_place=True`; the cpu target then reads the operand where it lies (TLOAD, TMOV and TMATMUL
pass a view along; the matmul reads a row-major B by rows) instead of copying it twice, which on a
CPU core is the core's own work (benchmarks/probe_decode_gemv.py measures the copies).

Few rows (decode). With a dynamic M and a B operand of at least FEW_ROWS_MIN_BYTES (1 MiB), the
kernel holds a second tile loop for M <= FEW_ROWS (the target's few_rows_bf16 for bf16: 6 on the
cpu target, whose AMX kernel takes the big tiles from 7 rows on), of narrow, long-K tiles
(`few_rows_shape`: 16 x 16 x 4096 f32 on the cpu target), and each loop's tile count is multiplied
by its side of that test, so exactly one of them runs. A decode step reads each weight once: the big tiles' short K
steps (512 columns x 128 K) read 512 short row pieces at a time, the narrow long-K tiles stream
whole rows of a transposed weight.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import sympy

from pto_dynamo.lowering.cube.ops import MatmulPlan, Operand, is_one, static_value
from pto_dynamo.lowering.tile import elem_type
from pto_dynamo.lowering.tile.builder import KernelBuilder
from pto_dynamo.lowering.tile.capacity import TargetCapacity
from pto_dynamo.lowering.tile.dtypes import BF16, F32, ElemType
from pto_dynamo.lowering.tile.expr import ceil_div, emax, emin, emod, floor_div
from pto_dynamo.lowering.tile.ir import Distribution, GmView, Layout, TileLoc, TileProgram
from pto_dynamo.lowering.tile.region import c_identifier
from pto_dynamo.lowering.vector.tiling import kernel_expr


class CubeTilingError(RuntimeError):
    """No tile shape fits the target's cube memories."""


def tile_shape(itemsize: int, capacity: TargetCapacity, M=None, accs: int = 1,
               a_row_bytes: int | None = None) -> tuple[int, int, int]:
    """(Mt, Nt, Kt): the largest output tile (then the longest K step) whose Left, Right and both
    Mat tiles fit the target and whose `accs` Acc tiles fit half its Acc memory: the other half
    double-buffers the accumulator on the NPU (the next tile accumulates while this one is
    stored), and on the cpu target a 256 KiB Acc tile stays in a core's L2 beside the operand
    panels (1 thread, linear [2048, 4096] x [4096, 4096]^T f32 on a 512 KiB-L2 core: 256 x 512 x
    128 tiles 1.10-1.15x eager's time, 256 x 256 x 256 1.06x). Of two shapes of one area with the
    same K step, the one with more rows: a TMATMUL packs each B panel once and runs it over its Mt
    rows, so taller tiles pack less often (a mixed kernel's two accumulators, 256 x 128 instead of
    128 x 256: the SwiGLU MLP at T=256 83 -> 85-87 GF/s, packing was ~11% of the 128-row product on
    this AVX2 core). A static M smaller than a tile shrinks Mt to it; the target's max_k_step and
    max_m_step bound Kt and Mt (the cpu target: 512 and 256, capacity.py), and its spread_k_step
    the Kt of 2-byte operands whose A rows lie `a_row_bytes` apart, when that is static and not a
    multiple of its aliased_row_bytes (the cpu target: 256 for bf16 rows not 2 KiB x n apart)."""
    left, right = capacity.capacity(TileLoc.Left), capacity.capacity(TileLoc.Right)
    acc, mat = capacity.capacity(TileLoc.Acc) // 2, capacity.capacity(TileLoc.Mat)
    sizes = (512, 256, 128, 64, 32, 16)
    max_k = capacity.max_k_step
    if (itemsize == 2 and capacity.spread_k_step is not None and a_row_bytes is not None
            and a_row_bytes % capacity.aliased_row_bytes != 0):
        max_k = capacity.spread_k_step if max_k is None else min(max_k, capacity.spread_k_step)
    best = None
    for mt in sizes:
        if isinstance(M, int) and mt >= 2 * max(M, 16):
            continue                                   # a static M needs no bigger tile
        if capacity.max_m_step is not None and mt > capacity.max_m_step:
            continue
        for nt in sizes:
            for kt in sizes:
                if max_k is not None and kt > max_k:
                    continue
                fits = (mt * kt * itemsize <= left and kt * nt * itemsize <= right and mt * nt * 4 * accs <= acc
                        and (mt * kt + kt * nt) * itemsize <= mat)
                key = (mt * nt, kt, mt)
                if fits and (best is None or key > best[0]):
                    best = (key, (mt, nt, kt))
    if best is None:
        raise CubeTilingError(f"target {capacity.name}: no matmul tile of {itemsize}-byte elements fits")
    return best[1]


# The token counts (M) that take the few-rows tile loop of a kernel with a dynamic M.
FEW_ROWS = 16
# The most bytes of a row-major B a few-rows K step reads (few_rows_shape).
FEW_ROWS_B_STEP_BYTES = 256 * 1024
# The smallest B operand (K x N per batch, in bytes; a dynamic K or N counts as large) that gets a
# few-rows loop: a smaller one stays in a core's caches between calls, so its decode step does not
# wait on DRAM and a second tile loop would only cost compile time.
FEW_ROWS_MIN_BYTES = 1 << 20


def few_rows_shape(itemsize: int, capacity: TargetCapacity, b_rows: bool = False) -> tuple[int, int, int]:
    """(Mt, Nt, Kt) for M <= FEW_ROWS, tiles along B's contiguous lines. A transposed B (a weight
    [N, K]): 16 columns, the longest K step up to 16 KiB of a row that fits the target, so its
    rows stream whole (read in place on the cpu target, 16 at a time; 1 thread, linear [1, 4096]
    x [4096, 4096]^T: 4 KiB steps x 32 columns 1.08x eager's time, 16 KiB x 16 columns 0.94x).
    A row-major B (`b_rows`, [K, N]): the widest N tile up to 16 KiB of a row, then the longest K
    step that fits (f32 on the cpu target: 16 whole rows of a [4096, 4096] weight, 256 KiB in a
    row; 1 thread, [1, 4096] x [4096, 4096]: 4 KiB pieces of 64 rows 2.5x eager's time, each a
    page that the core's prefetchers start anew, 16 whole rows 1.0x)."""
    left, right = capacity.capacity(TileLoc.Left), capacity.capacity(TileLoc.Right)
    acc, mat = capacity.capacity(TileLoc.Acc), capacity.capacity(TileLoc.Mat)
    sizes = (4096, 2048, 1024, 512, 256, 128, 64, 32, 16)
    mt = FEW_ROWS
    if b_rows:   # K steps of at most FEW_ROWS_B_STEP_BYTES (the measured 16 rows of f32)
        shapes = [(nt, kt) for nt in sizes if nt * itemsize <= 16384 for kt in sizes
                  if kt * nt * itemsize <= FEW_ROWS_B_STEP_BYTES]
    else:
        shapes = [(16, kt) for kt in sizes if kt * itemsize <= 16384]
    for nt, kt in shapes:
        if (mt * kt * itemsize <= left and kt * nt * itemsize <= right and mt * nt * 4 <= acc
                and (mt * kt + kt * nt) * itemsize <= mat):
            return mt, nt, kt
    raise CubeTilingError(f"target {capacity.name}: no few-rows matmul tile of {itemsize}-byte elements fits")


@dataclass(frozen=True)
class TileLoopPlan:
    """One SPMD tile loop of a matmul kernel: its tile shape, the run-time factor (0 or 1) of its
    tile count, and the name of its (first) Acc tile."""

    shape: tuple[int, int, int]
    side: object
    acc: str


def few_rows_limit(dtype: ElemType, capacity: TargetCapacity) -> int:
    """The most rows (M) a kernel's few-rows tile loop takes: FEW_ROWS, or the target's
    few_rows_bf16 for bf16 operands (capacity.py)."""
    return capacity.few_rows_bf16 if dtype == BF16 and capacity.few_rows_bf16 is not None else FEW_ROWS


def tile_loops(p, mm: MatmulPlan, dtype: ElemType, capacity: TargetCapacity, accs: int = 1) -> list[TileLoopPlan]:
    """The tile loops of a kernel computing `mm` on `dtype` operands: one for a static M, a B
    operand under FEW_ROWS_MIN_BYTES, or when the few-rows shape is the big one; else the few-rows
    loop (M <= few_rows_limit), then the big tiles' loop (M above it)."""
    itemsize = dtype.itemsize
    static_m = mm.M if isinstance(mm.M, int) else None
    shape = tile_shape(itemsize, capacity, static_m, accs, a_row_bytes(mm.a, itemsize))
    few = few_rows_shape(itemsize, capacity, b_rows=is_one(mm.b.strides[2]))
    k, n = static_value(mm.K), static_value(mm.N)
    small_b = k is not None and n is not None and k * n * itemsize < FEW_ROWS_MIN_BYTES
    if static_m is not None or small_b or few == shape:
        return [TileLoopPlan(shape, 1, "acc")]
    few_side = emin(1, emax(0, few_rows_limit(dtype, capacity) + 1 - p.expr(mm.M)))   # 1 when M <= it
    return [TileLoopPlan(few, few_side, "accd"), TileLoopPlan(shape, 1 - few_side, "acc")]


def a_row_bytes(a: Operand, itemsize: int) -> int | None:
    """How many bytes apart A's rows lie when A is read by rows with a static row stride."""
    row = static_value(a.strides[1])
    return row * itemsize if is_one(a.strides[2]) and row is not None else None


def acc_suffix(acc: str) -> str:
    """The suffix of the names (tiles, scalars, loop variables) of Acc tile `acc`'s matmul: none
    for the kernel's first Acc "acc", "_<acc>" for the others."""
    return "" if acc == "acc" else "_" + acc


class _Params:
    """Tensor parameters (one per buffer) and scalar parameters (free symbols) of the kernel."""

    def __init__(self, kb: KernelBuilder, metas: dict, outputs: set[str]):
        self.kb, self.metas, self.outputs = kb, metas, outputs
        self.tensors: dict[str, str] = {}
        self.scalars: dict[str, sympy.Symbol] = {}
        self.bound: set[str] = set()

    def expr(self, e):
        return kernel_expr(self.kb, self.scalars, self.bound, e)

    def let(self, name: str, value):
        self.bound.add(name)
        return self.kb.let(name, value)

    def tensor(self, buffer: str) -> str:
        if buffer not in self.tensors:
            meta = self.metas[buffer]
            name = c_identifier(buffer)
            self.tensors[buffer] = name
            self.kb.tensor(name, elem_type(meta.dtype), tuple(self.expr(s) for s in meta.shape),
                           tuple(self.expr(s) for s in meta.stride), output=buffer in self.outputs)
        return self.tensors[buffer]


def tile_matmul(mm: MatmulPlan, metas: dict, name: str, graph: str, capacity: TargetCapacity,
                description: str) -> tuple[TileProgram, list[str]]:
    """The planned, verified TileProgram of `mm` and the buffers of its tensor parameters in order."""
    dtype: ElemType = elem_type(metas[mm.a.buffer].dtype)
    kb = KernelBuilder(name, graph=graph, pass_name="cube", description=description, kind="cube")
    p = _Params(kb, metas, {mm.c.buffer})
    for op in (mm.a, mm.b, mm.c):
        p.tensor(op.buffer)
    for loop in tile_loops(p, mm, dtype, capacity):
        with output_tiles(p, mm, loop) as tile:
            accumulate(p, mm, dtype, tile, loop.shape, loop.acc)
            c = mm.c
            off = p.expr(c.offset) + tile.bi * p.expr(c.strides[0]) + tile.m0 * p.expr(c.strides[1]) + tile.n0
            kb.emit("TSTORE", kb.view(p.tensor(c.buffer), off, tile.vm, tile.vn, p.expr(c.strides[1])), loop.acc)
    return kb.build(capacity), list(p.tensors)


@dataclass(frozen=True)
class OutputTile:
    """The output tile of the current SPMD iteration: batch bi, rows m0 + [0, vm), cols n0 + [0, vn)."""

    bi: sympy.Expr
    m0: sympy.Expr
    n0: sympy.Expr
    vm: sympy.Expr
    vn: sympy.Expr


@contextlib.contextmanager
def output_tiles(p, mm: MatmulPlan, loop: TileLoopPlan) -> Iterator[OutputTile]:
    """The SPMD loop over batch x M-tiles x N-tiles (chunked over blocks), its count times
    `loop.side`; yields the tile. `p` binds scalars: `.kb`, `.expr(e)`, `.let(name, value)`,
    `.tensor(buffer)`, `.bound`. The scalars of a loop other than the "acc" one carry its name."""
    (Mt, Nt, _), side = loop.shape, loop.side
    suffix = acc_suffix(loop.acc)
    batch, M, N = (p.expr(e) for e in (mm.batch, mm.M, mm.N))
    tn = ceil_div(N, Nt)
    per_batch = ceil_div(M, Mt) * tn
    # divisors >= 1, so that an empty result (no tile) still has well-formed index arithmetic
    tn_div, per_batch_div = emax(tn, 1), emax(per_batch, 1)
    with p.kb.tile_loop("t" + suffix, batch * per_batch * side, Distribution.CHUNKED) as t:
        bi = p.let("bi" + suffix, floor_div(t, per_batch_div))
        r = p.let("r" + suffix, emod(t, per_batch_div))
        m0 = p.let("m0" + suffix, floor_div(r, tn_div) * Mt)
        n0 = p.let("n0" + suffix, emod(r, tn_div) * Nt)
        yield OutputTile(bi, m0, n0, p.let("vm" + suffix, emin(Mt, M - m0)), p.let("vn" + suffix, emin(Nt, N - n0)))


def accumulate(p, mm: MatmulPlan, dtype: ElemType, tile: OutputTile, shape: tuple[int, int, int], acc: str) -> None:
    """Declare Acc tile `acc` and run the K loop of `mm` for `tile` into it (tile names are
    suffixed with `acc` when it is not "acc", so two matmuls can share a kernel)."""
    kb, (Mt, Nt, Kt) = p.kb, shape
    K = p.expr(mm.K)
    tag = acc_suffix(acc)
    kb.tile(acc, TileLoc.Acc, F32, Mt, Nt, tile.vm, tile.vn)

    def k_step(k0, first: bool):
        vk = p.let(("vk0" if first else "vk") + tag, emin(Kt, K - k0))
        sfx = ("0" if first else "") + tag
        ma = _load(kb, p, f"ma{sfx}", mm.a, dtype, tile.bi, tile.m0, k0, tile.vm, vk, Mt, Kt)
        mb = _load(kb, p, f"mb{sfx}", mm.b, dtype, tile.bi, k0, tile.n0, vk, tile.vn, Kt, Nt, prefetch_next=True)
        kb.tile(f"la{sfx}", TileLoc.Left, dtype, Mt, Kt, tile.vm, vk)
        kb.tile(f"rb{sfx}", TileLoc.Right, dtype, Kt, Nt, vk, tile.vn)
        kb.emit("TMOV", f"la{sfx}", ma)
        kb.emit("TMOV", f"rb{sfx}", mb)
        if first:
            kb.emit("TMATMUL", acc, f"la{sfx}", f"rb{sfx}")
        else:
            kb.emit("TMATMUL_ACC", acc, acc, f"la{sfx}", f"rb{sfx}")

    k_step(sympy.Integer(0), True)
    with kb.serial_loop("k0" + tag, Kt, K, Kt) as k0:
        p.bound.add(k0.name)
        k_step(k0, False)


def _load(kb: KernelBuilder, p: _Params, tile: str, op: Operand, dtype: ElemType, bi, r0, c0, vr, vc,
          rows: int, cols: int, prefetch_next: bool = False) -> str:
    """TLOAD the (r0, c0) window of operand `op` of batch bi into a Mat tile: ND when its column
    stride is 1 (an Nz tile), else DN (a Zn tile: the operand is a transpose). `prefetch_next`:
    the next K step's window follows this one along the tile's rows (the cpu target prefetches it
    during the TMATMUL that follows, docs/device_abi.md). A window of a tensor the kernel does not
    write is loaded `in_place` instead: the cpu target's matmul reads it where it lies, by rows or
    by columns, instead of copying it twice (docs/device_abi.md)."""
    sb, sr, sc = (p.expr(s) for s in op.strides)
    off = p.expr(op.offset) + bi * sb + r0 * sr + c0 * sc
    nd = is_one(op.strides[2])
    kb.tile(tile, TileLoc.Mat, dtype, rows, cols, vr, vc, Layout.RowMajor if nd else Layout.ColMajor)
    tensor = p.tensor(op.buffer)
    view = kb.view(tensor, off, vr, vc, sr) if nd else GmView(tensor, off, vr, vc, 1, sc, dn=True)
    if not kb.is_output(tensor):
        hints = {"in_place": True}          # read where it lies: the core's own prefetchers stream it
    else:
        hints = {"prefetch_next": True} if prefetch_next else {}
    kb.emit("TLOAD", tile, view, **hints)
    return tile
