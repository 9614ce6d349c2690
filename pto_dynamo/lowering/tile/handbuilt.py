"""Hand-built TilePrograms: reference kernels for the renderer and runtime tests, the benchmark,
and worked examples of the tile IR for the lowering that will generate such programs.

Every builder returns a planned and verified program. Sizes named in the signature are dynamic
(scalar parameters) unless given as ints; row strides (`*_ld`) are scalar parameters too, so a
strided input view works without a copy.
"""
from __future__ import annotations

from pto_dynamo.lowering.tile.builder import KernelBuilder
from pto_dynamo.lowering.tile.capacity import A2A3_CAPACITY, TargetCapacity
from pto_dynamo.lowering.tile.dtypes import F32, ElemType
from pto_dynamo.lowering.tile.expr import ceil_div, emin, emod, floor_div
from pto_dynamo.lowering.tile.ir import Distribution, Layout, TileLoc, TileProgram
from pto_dynamo.lowering.tile.in_place_loads import read_inputs_in_place

Vec, ColMajor = TileLoc.Vec, Layout.ColMajor


def elementwise_chain(dtype: ElemType = F32, rows_per_tile: int = 16, cols_per_tile: int = 64,
                      distribution: Distribution = Distribution.CYCLIC,
                      capacity: TargetCapacity = A2A3_CAPACITY) -> TileProgram:
    """z = silu(x * y + 0.5) - 2 * sqrt(|x|) over a rows x cols matrix, 2-D tiles; 16-bit inputs
    are converted to f32 tiles and the result rounded back (TCVT)."""
    R, C = rows_per_tile, cols_per_tile
    kb = KernelBuilder(f"pto_vec_mul_adds_silu_sub_{dtype.name}_0", pass_name="handbuilt",
                       description="z = silu(x * y + 0.5) - 2 * sqrt(|x|)")
    rows, cols = kb.scalar("rows"), kb.scalar("cols")
    lds = {n: kb.scalar(f"{n}_ld") for n in ("x", "y", "z")}
    kb.tensor("x", dtype, (rows, cols), (lds["x"], 1))
    kb.tensor("y", dtype, (rows, cols), (lds["y"], 1))
    kb.tensor("z", dtype, (rows, cols), (lds["z"], 1), output=True)
    col_tiles = ceil_div(cols, C)
    with kb.tile_loop("t", ceil_div(rows, R) * col_tiles, distribution) as t:
        r0 = kb.let("r0", floor_div(t, col_tiles) * R)
        c0 = kb.let("c0", emod(t, col_tiles) * C)
        vr, vc = kb.let("vr", emin(R, rows - r0)), kb.let("vc", emin(C, cols - c0))
        for name in ("a", "b"):
            kb.tile(name, Vec, F32, R, C, vr, vc)
        if dtype != F32:
            for name in ("xin", "yin"):
                kb.tile(name, Vec, dtype, R, C, vr, vc)
            kb.emit("TLOAD", "xin", kb.view("x", r0 * lds["x"] + c0, vr, vc, lds["x"]))
            kb.emit("TLOAD", "yin", kb.view("y", r0 * lds["y"] + c0, vr, vc, lds["y"]))
            kb.emit("TCVT", "a", "xin", round="CAST_RINT")
            kb.emit("TCVT", "b", "yin", round="CAST_RINT")
        else:
            kb.emit("TLOAD", "a", kb.view("x", r0 * lds["x"] + c0, vr, vc, lds["x"]))
            kb.emit("TLOAD", "b", kb.view("y", r0 * lds["y"] + c0, vr, vc, lds["y"]))
        kb.emit("TMUL", "b", "a", "b")
        kb.emit("TADDS", "b", "b", 0.5)
        kb.emit("TSILU", "b", "b")
        kb.emit("TABS", "a", "a")
        kb.emit("TSQRT", "a", "a")
        kb.emit("TMULS", "a", "a", 2.0)
        kb.emit("TSUB", "a", "b", "a")
        out = "a"
        if dtype != F32:
            kb.emit("TCVT", "xin", "a", round="CAST_RINT")
            out = "xin"
        kb.emit("TSTORE", kb.view("z", r0 * lds["z"] + c0, vr, vc, lds["z"]), out)
    return kb.build(capacity)


def row_reduce(kind: str = "sum", rows_per_tile: int = 16, cols_per_tile: int = 64,
               capacity: TargetCapacity = A2A3_CAPACITY) -> TileProgram:
    """out[r] = sum/max_c x[r, c] for any number of columns: a running per-row result across
    column tiles, combined on its 1 x R row-vector view (TRESHAPE, the FA recipe)."""
    assert kind in ("sum", "max")
    R, C = rows_per_tile, cols_per_tile
    reduce_op, combine_op = ("TROWSUM", "TADD") if kind == "sum" else ("TROWMAX", "TMAX")
    kb = KernelBuilder(f"pto_vec_row{kind}_0", pass_name="handbuilt", description=f"out = x.{kind}(dim=1)")
    rows, cols, ld = kb.scalar("rows"), kb.scalar("cols"), kb.scalar("x_ld")
    kb.tensor("x", F32, (rows, cols), (ld, 1))
    kb.tensor("out", F32, (rows,), (1,), output=True)
    with kb.tile_loop("t", ceil_div(rows, R)) as t:
        vr = kb.let("vr", emin(R, rows - t * R))
        kb.tile("acc", Vec, F32, R, 1, vr, 1, ColMajor)
        kb.tile("part", Vec, F32, R, 1, vr, 1, ColMajor)
        kb.tile("acc_row", Vec, F32, 1, R, 1, vr)
        kb.tile("part_row", Vec, F32, 1, R, 1, vr)
        kb.tile("tmp", Vec, F32, R, C, R, C)
        kb.emit("TRESHAPE", "acc_row", "acc")
        kb.emit("TRESHAPE", "part_row", "part")
        kb.emit("TEXPANDS", "acc_row", 0.0 if kind == "sum" else float("-inf"))
        with kb.serial_loop("j", 0, ceil_div(cols, C)) as j:
            vc = kb.let("vc", emin(C, cols - j * C))
            kb.tile("xt", Vec, F32, R, C, vr, vc)
            kb.emit("TLOAD", "xt", kb.view("x", t * R * ld + j * C, vr, vc, ld))
            kb.emit(reduce_op, "part", "xt", "tmp")
            kb.emit(combine_op, "acc_row", "acc_row", "part_row")
        kb.emit("TSTORE", kb.column_view("out", t * R, vr), "acc")
    return kb.build(capacity)


def row_softmax(rows_per_tile: int = 8, cols_per_tile: int = 256,
                capacity: TargetCapacity = A2A3_CAPACITY) -> TileProgram:
    """out = softmax(x, dim=1) for cols <= cols_per_tile: one tile row covers a whole row."""
    R, C = rows_per_tile, cols_per_tile
    kb = KernelBuilder("pto_vec_softmax_0", pass_name="handbuilt", description="out = softmax(x, dim=1)")
    rows, cols, ld = kb.scalar("rows"), kb.scalar("cols"), kb.scalar("x_ld")
    kb.tensor("x", F32, (rows, cols), (ld, 1))
    kb.tensor("out", F32, (rows, cols), (cols, 1), output=True)
    with kb.tile_loop("t", ceil_div(rows, R)) as t:
        vr = kb.let("vr", emin(R, rows - t * R))
        kb.tile("xt", Vec, F32, R, C, vr, cols)
        kb.tile("tmp", Vec, F32, R, C, vr, cols)
        kb.tile("rmax", Vec, F32, R, 1, vr, 1, ColMajor)
        kb.tile("rsum", Vec, F32, R, 1, vr, 1, ColMajor)
        kb.emit("TLOAD", "xt", kb.view("x", t * R * ld, vr, cols, ld))
        kb.emit("TROWMAX", "rmax", "xt", "tmp")
        kb.emit("TROWEXPANDSUB", "xt", "xt", "rmax")
        kb.emit("TEXP", "xt", "xt")
        kb.emit("TROWSUM", "rsum", "xt", "tmp")
        kb.emit("TROWEXPANDDIV", "xt", "xt", "rsum")
        kb.emit("TSTORE", kb.view("out", t * R * cols, vr, cols, cols), "xt")
    return kb.build(capacity)


def online_row_softmax(rows_per_tile: int = 8, cols_per_tile: int = 64,
                       capacity: TargetCapacity = A2A3_CAPACITY) -> TileProgram:
    """out = softmax(x, dim=1) for any cols: pass 1 keeps a running max m and sum s per row,
    rescaling s by exp(m_old - m_new) per column tile; pass 2 writes exp(x - m) / s."""
    R, C = rows_per_tile, cols_per_tile
    kb = KernelBuilder("pto_vec_online_softmax_0", pass_name="handbuilt",
                       description="out = softmax(x, dim=1), online over column tiles")
    rows, cols, ld = kb.scalar("rows"), kb.scalar("cols"), kb.scalar("x_ld")
    kb.tensor("x", F32, (rows, cols), (ld, 1))
    kb.tensor("out", F32, (rows, cols), (cols, 1), output=True)
    with kb.tile_loop("t", ceil_div(rows, R)) as t:
        vr = kb.let("vr", emin(R, rows - t * R))
        for name in ("m", "s", "cm", "cs"):          # per-row values, and their 1 x R views
            kb.tile(name, Vec, F32, R, 1, vr, 1, ColMajor)
            kb.tile(f"{name}_row", Vec, F32, 1, R, 1, vr)
            kb.emit("TRESHAPE", f"{name}_row", name)
        kb.tile("tmp", Vec, F32, R, C, R, C)
        kb.emit("TEXPANDS", "m_row", float("-inf"))
        kb.emit("TEXPANDS", "s_row", 0.0)
        n_col_tiles = ceil_div(cols, C)
        with kb.serial_loop("j", 0, n_col_tiles) as j:
            vc = kb.let("vc", emin(C, cols - j * C))
            kb.tile("xt", Vec, F32, R, C, vr, vc)
            kb.emit("TLOAD", "xt", kb.view("x", t * R * ld + j * C, vr, vc, ld))
            kb.emit("TROWMAX", "cm", "xt", "tmp")
            kb.emit("TMAX", "cm_row", "cm_row", "m_row")          # m_new
            kb.emit("TSUB", "m_row", "m_row", "cm_row")           # m_old - m_new
            kb.emit("TEXP", "m_row", "m_row")                     # alpha = exp(m_old - m_new)
            kb.emit("TMUL", "s_row", "s_row", "m_row")            # s *= alpha
            kb.emit("TROWEXPANDSUB", "xt", "xt", "cm")
            kb.emit("TEXP", "xt", "xt")
            kb.emit("TROWSUM", "cs", "xt", "tmp")
            kb.emit("TADD", "s_row", "s_row", "cs_row")           # s += sum exp(x - m_new)
            kb.emit("TMOV", "m_row", "cm_row")                    # m = m_new
        with kb.serial_loop("k", 0, n_col_tiles) as k:
            vc2 = kb.let("vc2", emin(C, cols - k * C))
            kb.tile("yt", Vec, F32, R, C, vr, vc2)
            kb.emit("TLOAD", "yt", kb.view("x", t * R * ld + k * C, vr, vc2, ld))
            kb.emit("TROWEXPANDSUB", "yt", "yt", "m")
            kb.emit("TEXP", "yt", "yt")
            kb.emit("TROWEXPANDDIV", "yt", "yt", "s")
            kb.emit("TSTORE", kb.view("out", t * R * cols + k * C, vr, vc2, cols), "yt")
    return kb.build(capacity)


def cast(src: ElemType, dst: ElemType, rows_per_tile: int = 16, cols_per_tile: int = 64,
         capacity: TargetCapacity = A2A3_CAPACITY) -> TileProgram:
    """out = x.to(dst) on a contiguous rows x cols matrix (TCVT, round to nearest even)."""
    R, C = rows_per_tile, cols_per_tile
    kb = KernelBuilder(f"pto_vec_cvt_{src.name}_{dst.name}_0", pass_name="handbuilt",
                       description=f"out = x.to({dst.name})")
    rows, cols = kb.scalar("rows"), kb.scalar("cols")
    kb.tensor("x", src, (rows, cols), (cols, 1))
    kb.tensor("out", dst, (rows, cols), (cols, 1), output=True)
    col_tiles = ceil_div(cols, C)
    with kb.tile_loop("t", ceil_div(rows, R) * col_tiles) as t:
        r0, c0 = kb.let("r0", floor_div(t, col_tiles) * R), kb.let("c0", emod(t, col_tiles) * C)
        vr, vc = kb.let("vr", emin(R, rows - r0)), kb.let("vc", emin(C, cols - c0))
        kb.tile("a", Vec, src, R, C, vr, vc)
        kb.tile("b", Vec, dst, R, C, vr, vc)
        kb.emit("TLOAD", "a", kb.view("x", r0 * cols + c0, vr, vc, cols))
        kb.emit("TCVT", "b", "a", round="CAST_RINT")
        kb.emit("TSTORE", kb.view("out", r0 * cols + c0, vr, vc, cols), "b")
    return kb.build(capacity)


def broadcasts(rows_per_tile: int = 16, cols_per_tile: int = 64,
               capacity: TargetCapacity = A2A3_CAPACITY) -> TileProgram:
    """Row and column broadcasts of a per-row vector rv[rows] and a per-column vector cw[cols]:
    out1 = (x - rv[:, None]) * cw[None, :]; out2 = rv[:, None] + cw[None, :];
    out3 = cw[None, :] * rv[:, None] (plain TCOLEXPAND then TROWEXPANDMUL)."""
    R, C = rows_per_tile, cols_per_tile
    kb = KernelBuilder("pto_vec_broadcast_sub_mul_0", pass_name="handbuilt",
                       description="row/column broadcasts: (x - rv) * cw, rv + cw, cw * rv")
    rows, cols = kb.scalar("rows"), kb.scalar("cols")
    kb.tensor("x", F32, (rows, cols), (cols, 1))
    kb.tensor("rv", F32, (rows,), (1,))
    kb.tensor("cw", F32, (cols,), (1,))
    for name in ("out1", "out2", "out3"):
        kb.tensor(name, F32, (rows, cols), (cols, 1), output=True)
    col_tiles = ceil_div(cols, C)
    with kb.tile_loop("t", ceil_div(rows, R) * col_tiles, Distribution.CHUNKED) as t:
        r0, c0 = kb.let("r0", floor_div(t, col_tiles) * R), kb.let("c0", emod(t, col_tiles) * C)
        vr, vc = kb.let("vr", emin(R, rows - r0)), kb.let("vc", emin(C, cols - c0))
        kb.tile("xt", Vec, F32, R, C, vr, vc)
        kb.tile("e", Vec, F32, R, C, vr, vc)
        kb.tile("rvt", Vec, F32, R, 1, vr, 1, ColMajor)
        kb.tile("cwt", Vec, F32, 1, C, 1, vc)
        kb.emit("TLOAD", "xt", kb.view("x", r0 * cols + c0, vr, vc, cols))
        kb.emit("TLOAD", "rvt", kb.column_view("rv", r0, vr))
        kb.emit("TLOAD", "cwt", kb.view("cw", c0, 1, vc, cols))
        kb.emit("TROWEXPANDSUB", "xt", "xt", "rvt")
        kb.emit("TCOLEXPANDMUL", "xt", "xt", "cwt")
        kb.emit("TSTORE", kb.view("out1", r0 * cols + c0, vr, vc, cols), "xt")
        kb.emit("TROWEXPAND", "e", "rvt")
        kb.emit("TCOLEXPANDADD", "e", "e", "cwt")
        kb.emit("TSTORE", kb.view("out2", r0 * cols + c0, vr, vc, cols), "e")
        kb.emit("TCOLEXPAND", "e", "cwt")
        kb.emit("TROWEXPANDMUL", "e", "e", "rvt")
        kb.emit("TSTORE", kb.view("out3", r0 * cols + c0, vr, vc, cols), "e")
    return kb.build(capacity)


def residual_rmsnorm(hidden: int | None = 4096, eps: float = 1e-6, rows_per_tile: int | None = None,
                     cols_capacity: int | None = None, distribution: Distribution = Distribution.CYCLIC,
                     stream_stores: bool = False, prefetch_next: bool = False, read_in_place: bool = False,
                     capacity: TargetCapacity = A2A3_CAPACITY) -> TileProgram:
    """Fused residual add + RMSNorm over T tokens (T dynamic):
        y = x + r                      (stored: the new residual stream)
        out = y * rsqrt(mean(y^2) + eps) * w
    `hidden` is the static width D, or None for a dynamic `D` scalar (then `cols_capacity` bounds
    it). One tile row holds a whole token; `rows_per_tile` defaults to what fits in UB. On a CPU
    whose cores run many blocks one after another, CHUNKED walks memory sequentially.

    CPU cache hints (docs/device_abi.md; the NPU ignores them): `stream_stores` writes y and out
    with streaming stores (no read-for-ownership: 4 instead of 6 bytes of DRAM traffic per element
    stored, but the outputs leave the caches, so use it when they are larger than the caches, as at
    prefill sizes, not when the next kernel reads them right away); `prefetch_next` has the x and r
    TLOADs prefetch the next tile's rows (useful with CHUNKED, whose tiles follow each other).
    `read_in_place` computes y and y^2 into tiles of their own, so that x, r and w are only read
    and their TLOADs carry in_place=True (in_place_loads.py: the cpu target reads them where they
    lie, two copies fewer per token)."""
    C = cols_capacity or hidden
    if C is None:
        raise ValueError("residual_rmsnorm: a dynamic hidden size needs cols_capacity")
    n_tiles = 5 if read_in_place else 3
    if rows_per_tile is None:   # x, r, tmp (and y, y^2) tiles of R x C plus w; leave room for alignment
        rows_per_tile = max(1, (capacity.capacity(Vec) - C * 4 - 256) // (n_tiles * C * 4))
        rows_per_tile = min(rows_per_tile, 8)
    R = rows_per_tile
    load_hint = {"prefetch_next": True} if prefetch_next else {}   # attrs only when asked: the
    store_hint = {"stream": True} if stream_stores else {}          # plain program stays as it was
    kb = KernelBuilder("pto_vec_add_rmsnorm_0", pass_name="handbuilt",
                       description="y = x + r; out = y * rsqrt(mean(y^2) + eps) * w")
    T = kb.scalar("T")
    D = hidden if hidden is not None else kb.scalar("D")
    kb.tensor("x", F32, (T, D), (D, 1))
    kb.tensor("r", F32, (T, D), (D, 1))
    kb.tensor("w", F32, (D,), (1,))
    kb.tensor("y", F32, (T, D), (D, 1), output=True)
    kb.tensor("out", F32, (T, D), (D, 1), output=True)
    kb.tile("wt", Vec, F32, 1, C, 1, D)
    kb.emit("TLOAD", "wt", kb.view("w", 0, 1, D, D))
    with kb.tile_loop("t", ceil_div(T, R), distribution) as t:
        vr = kb.let("vr", emin(R, T - t * R))
        kb.tile("xt", Vec, F32, R, C, vr, D)
        kb.tile("rt", Vec, F32, R, C, vr, D)
        kb.tile("tmp", Vec, F32, R, C, vr, D)
        yt, sq = ("yt", "sq") if read_in_place else ("xt", "rt")
        if read_in_place:
            kb.tile("yt", Vec, F32, R, C, vr, D)
            kb.tile("sq", Vec, F32, R, C, vr, D)
        RP = -(-R // 8) * 8      # a per-row f32 column needs a multiple of 8 rows (32 bytes)
        kb.tile("ss", Vec, F32, RP, 1, vr, 1, ColMajor)
        kb.tile("ss_row", Vec, F32, 1, RP, 1, vr)
        kb.emit("TRESHAPE", "ss_row", "ss")
        kb.emit("TLOAD", "xt", kb.view("x", t * R * D, vr, D, D), **load_hint)
        kb.emit("TLOAD", "rt", kb.view("r", t * R * D, vr, D, D), **load_hint)
        kb.emit("TADD", yt, "xt", "rt")
        kb.emit("TSTORE", kb.view("y", t * R * D, vr, D, D), yt, **store_hint)
        kb.emit("TMUL", sq, yt, yt)
        kb.emit("TROWSUM", "ss", sq, "tmp")
        kb.emit("TMULS", "ss_row", "ss_row", 1 / D)          # mean; 1/D is a float expression if D is dynamic
        kb.emit("TADDS", "ss_row", "ss_row", eps)
        kb.emit("TRSQRT", "ss_row", "ss_row")
        kb.emit("TROWEXPANDMUL", yt, yt, "ss")
        kb.emit("TCOLEXPANDMUL", yt, yt, "wt")
        kb.emit("TSTORE", kb.view("out", t * R * D, vr, D, D), yt, **store_hint)
    program = kb.build(capacity)
    return read_inputs_in_place(program) if read_in_place else program


def residual_rmsnorm_chunked(hidden: int | None = 4096, eps: float = 1e-6, rows_per_tile: int = 2,
                             col_chunk: int = 1024, capacity: TargetCapacity = A2A3_CAPACITY) -> TileProgram:
    """The same fused residual + RMSNorm with small tiles (`rows_per_tile x col_chunk`) in two
    phases per token tile: (1) y = x + r, store y, accumulate sum(y^2) per row over column chunks;
    (2) reload y (just written, still in cache) and store y * rsqrt(mean + eps) * w. Tiles stay
    small enough for a CPU's L1, at the price of reading y twice."""
    R, C = rows_per_tile, col_chunk
    RP = -(-R // 8) * 8
    kb = KernelBuilder("pto_vec_add_rmsnorm_chunked_0", pass_name="handbuilt",
                       description="y = x + r; out = y * rsqrt(mean(y^2) + eps) * w (two phases, column chunks)")
    T = kb.scalar("T")
    D = hidden if hidden is not None else kb.scalar("D")
    kb.tensor("x", F32, (T, D), (D, 1))
    kb.tensor("r", F32, (T, D), (D, 1))
    kb.tensor("w", F32, (D,), (1,))
    kb.tensor("y", F32, (T, D), (D, 1), output=True)
    kb.tensor("out", F32, (T, D), (D, 1), output=True)
    n_chunks = ceil_div(D, C)
    with kb.tile_loop("t", ceil_div(T, R)) as t:
        vr = kb.let("vr", emin(R, T - t * R))
        kb.tile("ss", Vec, F32, RP, 1, vr, 1, ColMajor)
        kb.tile("part", Vec, F32, RP, 1, vr, 1, ColMajor)
        kb.tile("ss_row", Vec, F32, 1, RP, 1, vr)
        kb.tile("part_row", Vec, F32, 1, RP, 1, vr)
        kb.emit("TRESHAPE", "ss_row", "ss")
        kb.emit("TRESHAPE", "part_row", "part")
        kb.tile("tmp", Vec, F32, R, C, R, C)
        kb.emit("TEXPANDS", "ss_row", 0.0)
        with kb.serial_loop("j", 0, n_chunks) as j:
            vc = kb.let("vc", emin(C, D - j * C))
            kb.tile("xt", Vec, F32, R, C, vr, vc)
            kb.tile("rt", Vec, F32, R, C, vr, vc)
            kb.emit("TLOAD", "xt", kb.view("x", t * R * D + j * C, vr, vc, D))
            kb.emit("TLOAD", "rt", kb.view("r", t * R * D + j * C, vr, vc, D))
            kb.emit("TADD", "xt", "xt", "rt")
            kb.emit("TSTORE", kb.view("y", t * R * D + j * C, vr, vc, D), "xt")
            kb.emit("TMUL", "rt", "xt", "xt")
            kb.emit("TROWSUM", "part", "rt", "tmp")
            kb.emit("TADD", "ss_row", "ss_row", "part_row")
        kb.emit("TMULS", "ss_row", "ss_row", 1 / D)
        kb.emit("TADDS", "ss_row", "ss_row", eps)
        kb.emit("TRSQRT", "ss_row", "ss_row")
        with kb.serial_loop("k", 0, n_chunks) as k:
            vc2 = kb.let("vc2", emin(C, D - k * C))
            kb.tile("yt", Vec, F32, R, C, vr, vc2)
            kb.tile("wt", Vec, F32, 1, C, 1, vc2)
            kb.emit("TLOAD", "yt", kb.view("y", t * R * D + k * C, vr, vc2, D))
            kb.emit("TLOAD", "wt", kb.view("w", k * C, 1, vc2, D))
            kb.emit("TROWEXPANDMUL", "yt", "yt", "ss")
            kb.emit("TCOLEXPANDMUL", "yt", "yt", "wt")
            kb.emit("TSTORE", kb.view("out", t * R * D + k * C, vr, vc2, D), "yt")
    return kb.build(capacity)


def compare_select(rows_per_tile: int = 16, cols_per_tile: int = 64,
                   capacity: TargetCapacity = A2A3_CAPACITY) -> TileProgram:
    """z = where(x > y, x, y) + where(x >= 0, x, -1): TCMP/TSEL and TCMPS/TSELS through u8 masks."""
    from pto_dynamo.lowering.tile.dtypes import U8
    R, C = rows_per_tile, cols_per_tile
    kb = KernelBuilder("pto_vec_cmp_sel_0", pass_name="handbuilt",
                       description="z = where(x > y, x, y) + where(x >= 0, x, -1)")
    rows, cols = kb.scalar("rows"), kb.scalar("cols")
    kb.tensor("x", F32, (rows, cols), (cols, 1))
    kb.tensor("y", F32, (rows, cols), (cols, 1))
    kb.tensor("z", F32, (rows, cols), (cols, 1), output=True)
    col_tiles = ceil_div(cols, C)
    with kb.tile_loop("t", ceil_div(rows, R) * col_tiles) as t:
        r0, c0 = kb.let("r0", floor_div(t, col_tiles) * R), kb.let("c0", emod(t, col_tiles) * C)
        vr, vc = kb.let("vr", emin(R, rows - r0)), kb.let("vc", emin(C, cols - c0))
        for name in ("a", "b", "o1", "o2"):
            kb.tile(name, Vec, F32, R, C, vr, vc)
        kb.tile("mask", Vec, U8, R, max(32, -(-C // 8)), vr, ceil_div(vc, 8))
        kb.tile("sel_tmp", Vec, F32, 1, 16, 1, 16)
        kb.emit("TLOAD", "a", kb.view("x", r0 * cols + c0, vr, vc, cols))
        kb.emit("TLOAD", "b", kb.view("y", r0 * cols + c0, vr, vc, cols))
        kb.emit("TCMP", "mask", "a", "b", mode="GT")
        kb.emit("TSEL", "o1", "mask", "a", "b", "sel_tmp")
        kb.emit("TCMPS", "mask", "a", 0.0, mode="GE")
        kb.emit("TSELS", "o2", "mask", "a", -1.0, "sel_tmp")
        kb.emit("TADD", "o1", "o1", "o2")
        kb.emit("TSTORE", kb.view("z", r0 * cols + c0, vr, vc, cols), "o1")
    return kb.build(capacity)
